"""PostgreSQL's CPU per row for the engine's many-row writes: executemany against one statement.

Run ``python bench/pg_rows.py`` (about a minute; ``--batches N``, ``--rows N``, ``--repeats
N``; PostgreSQL from ``BENCH_POSTGRES_URL``'s server, default the local one). It makes a fresh
database (``bench_pg_rows``), migrated as Ballast migrates its own, and writes with the engine's
own statements (``bot.store.driver_sql``: those made by ``insert_rows`` / ``update_rows``):

- ``timeline``: the batch's timeline INSERT, rows spread over 20 incidents;
- ``incident alerts``: the batch's incident-alert INSERT (new fingerprints);
- ``processed mark``: the inbox's processed mark, each batch's rows first claimed as the engine
  claims them (``FOR UPDATE SKIP LOCKED``; the claim is in both figures).

Each batch in its own transaction, both ways alternated batch by batch: ``executemany`` (the
compiled statement, one execution per row, as before) and ``arrays`` (one statement, a
parameter array per column). PostgreSQL's CPU is its backend process's (``/proc/<pid>/stat``:
the server must run on this machine), per row; Ballast's is this process's
(``time.process_time``), per row, driver included. The best of ``--repeats`` runs is printed:
other work on the machine only ever adds.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != REPO / "bench"]
sys.path.insert(0, str(REPO))
sys.path.insert(1, str(REPO / "bench"))

from ingest import PG_ADMIN_DSN, reset_postgres  # noqa: E402
from sqlalchemy import JSON, BigInteger, DateTime, Integer, Table, insert, text  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncConnection  # noqa: E402
from sqlalchemy.types import TypeDecorator  # noqa: E402

from bot.settings import Settings  # noqa: E402
from bot.store import inbox, incident_batch  # noqa: E402
from bot.store.database import Database  # noqa: E402
from bot.store.driver_sql import DriverStatement  # noqa: E402

DATABASE = "bench_pg_rows"
TICK = os.sysconf("SC_CLK_TCK")
Write = Callable[[AsyncConnection, DriverStatement, list[tuple[Any, ...]]], Awaitable[None]]


def backend_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


async def executemany(conn: AsyncConnection, statement: DriverStatement, rows: list[Any]) -> None:
    plan = statement.plan(conn.dialect)
    await conn.exec_driver_sql(plan.sql, [plan.convert(row) for row in rows])


async def arrays(conn: AsyncConnection, statement: DriverStatement, rows: list[Any]) -> None:
    plan = statement.plan(conn.dialect)
    assert plan.arrays_sql is not None
    await conn.exec_driver_sql(plan.arrays_sql, plan.arrays(rows))


def filler(table: Table, now: datetime, n: int) -> dict[str, Any]:
    """A value for every column a row must have (NOT NULL, no default), by its type."""
    values: dict[str, Any] = {}
    for column in table.columns:
        if column.nullable or column.primary_key or column.default is not None:
            continue
        kind = column.type
        kind = kind.impl_instance if isinstance(kind, TypeDecorator) else kind
        if isinstance(kind, DateTime):
            values[column.name] = now
        elif isinstance(kind, JSON):
            values[column.name] = {}
        elif isinstance(kind, Integer | BigInteger):
            values[column.name] = 0
        else:
            values[column.name] = f"{column.name}-{n}"
    return values


LABELS = {
    "alertname": "ToolCallFailureRate",
    "service": "support-assistant",
    "tool": "search",
    "severity": "page",
}


class Bench:
    def __init__(self, db: Database, rows: int) -> None:
        self.db = db
        self.rows = rows
        self.now = datetime.now(UTC)
        self.serial = 0
        self.incidents: list[int] = []

    async def setup(self) -> None:
        table = incident_batch.INCIDENTS
        async with self.db.engine.begin() as conn:
            for n in range(20):
                values = filler(table, self.now, n) | {
                    "key": f"bench-{n}",
                    "status": "open",
                    "severity": "page",
                }
                result = await conn.execute(insert(table).values(values).returning(table.c.id))
                self.incidents.append(int(result.scalar_one()))

    def timeline_rows(self) -> list[tuple[Any, ...]]:
        details = {"fingerprint": "0123456789abcdef", "labels": LABELS}
        return [
            (self.incidents[i % 20], self.now, "alertmanager", "alert_firing", "firing", details)
            for i in range(self.rows)
        ]

    def alert_rows(self) -> list[tuple[Any, ...]]:
        rows = []
        for i in range(self.rows):
            self.serial += 1
            rows.append(
                (
                    self.incidents[i % 20],
                    f"{self.serial:032x}",
                    "alertmanager",
                    self.now,
                    "firing",
                    self.now,
                    None,
                    LABELS,
                    {"summary": "tool calls failing"},
                    "http://prometheus:9090/graph",
                    self.now,
                )
            )
        return rows

    async def stored_inbox(self, count: int) -> None:
        table = incident_batch.INBOX
        async with self.db.engine.begin() as conn:
            for start in range(0, count, 1000):
                batch = []
                for _ in range(start, min(count, start + 1000)):
                    self.serial += 1
                    values = filler(table, self.now, self.serial)
                    batch.append(
                        values
                        | {
                            "source": "alertmanager",
                            "status": "firing",
                            "fingerprint": f"{self.serial:032x}",
                            "labels": LABELS,
                        }
                    )
                await conn.execute(insert(table), batch)

    async def mark_rows(self, conn: AsyncConnection) -> list[tuple[Any, ...]]:
        # The engine's claim (the rows locked for the transaction); its first column is the id.
        claimed = await conn.execute(incident_batch._CLAIM_SKIP_LOCKED, {"limit": self.rows})
        return [(row[0], self.now, "new_alert", self.incidents[0]) for row in claimed]

    async def run(self, name: str, write: Write, batches: int) -> tuple[float, float]:
        """(PostgreSQL, Ballast) CPU µs per row over ``batches`` batches."""
        statements = {
            "timeline": incident_batch._INSERT_TIMELINE,
            "incident alerts": incident_batch._INSERT_ALERTS,
            "processed mark": inbox._MARK_PROCESSED,
        }
        statement = statements[name]
        async with self.db.engine.connect() as conn:
            pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
            await conn.commit()
            pg, own = backend_cpu(pid), time.process_time()
            for _ in range(batches):
                if name == "timeline":
                    rows = self.timeline_rows()
                elif name == "incident alerts":
                    rows = self.alert_rows()
                else:
                    rows = await self.mark_rows(conn)
                await write(conn, statement, rows)
                await conn.commit()
            pg, own = backend_cpu(pid) - pg, time.process_time() - own
        count = batches * self.rows
        return pg / count * 1e6, own / count * 1e6


async def main(args: argparse.Namespace) -> None:
    await reset_postgres(DATABASE)
    db = Database(
        Settings(database_url=PG_ADMIN_DSN.rsplit("/", 1)[0] + f"/{DATABASE}").async_database_url
    )
    await db.migrate()
    bench = Bench(db, args.rows)
    await bench.setup()
    await bench.stored_inbox(args.rows * args.batches * 2 * args.repeats)
    print(f"{args.batches} batches of {args.rows} rows, best of {args.repeats}")
    print("| write | form | PostgreSQL µs/row | Ballast µs/row |")
    print("| --- | --- | ---: | ---: |")
    try:
        for name in ("timeline", "incident alerts", "processed mark"):
            best: dict[str, tuple[float, float]] = {}
            for _ in range(args.repeats):
                for form, write in (("executemany", executemany), ("arrays", arrays)):
                    pg, own = await bench.run(name, write, args.batches)
                    old = best.get(form)
                    best[form] = (min(pg, old[0]), min(own, old[1])) if old else (pg, own)
            for form, (pg, own) in best.items():
                print(f"| {name} | {form} | {pg:.1f} | {own:.1f} |")
    finally:
        await db.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=100)
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    asyncio.run(main(parser.parse_args()))
