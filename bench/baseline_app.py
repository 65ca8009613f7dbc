"""The bare baseline for ``bench/ingest.py``: the least code that does Ballast's ingest work.

Starlette on the same uvicorn (uvloop + httptools), no Ballast code: decode the Alertmanager
body with the stdlib ``json``, pull out the same fields (times parsed, firing ``endsAt`` dropped,
repeats within the body folded), and insert the same rows into a table identical to Ballast's
``inbox_alerts`` with the same ``INSERT ... ON CONFLICT DO NOTHING RETURNING id``, committed
before the answer. It exists to give the ingest benchmark a ceiling to be measured against, so
it skips what only costs time: no validation messages, no metrics, no ORM, no incident engine.

- SQLite: the stdlib ``sqlite3`` with Ballast's pragmas (WAL, ``synchronous=FULL`` unless
  ``--synchronous NORMAL``, autocheckpoint off with a checkpoint every second from a thread).
  The one connection is used from a single writer thread, so the event loop keeps reading
  requests while a commit waits for its fsync (``--inline`` runs it on the loop instead).
- PostgreSQL: ``asyncpg`` directly (the driver Ballast uses under SQLAlchemy), a pool of 10, one
  statement per request in autocommit: a single round trip, the least a commit can cost.

Run: ``python bench/baseline_app.py --database sqlite:///path.db --port 8090``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sqlite3
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

COLUMNS = (
    "source, fingerprint, status, starts_at, ends_at, labels, annotations, generator_url, "
    "group_key, truncated_alerts, received_at, processed_at, incident_id, outcome"
)
N_COLUMNS = 14

# The same table as Ballast's migration 0001 (bot/store/migrations), written out by hand.
SQLITE_DDL = """
CREATE TABLE IF NOT EXISTS inbox_alerts (
    id INTEGER NOT NULL,
    source VARCHAR(32) NOT NULL,
    fingerprint VARCHAR(128) NOT NULL,
    status VARCHAR(16) NOT NULL,
    starts_at DATETIME NOT NULL,
    ends_at DATETIME,
    labels JSON NOT NULL,
    annotations JSON NOT NULL,
    generator_url TEXT,
    group_key TEXT,
    truncated_alerts INTEGER NOT NULL,
    received_at DATETIME NOT NULL,
    processed_at DATETIME,
    incident_id INTEGER,
    outcome VARCHAR(32),
    CONSTRAINT pk_inbox_alerts PRIMARY KEY (id),
    CONSTRAINT uq_inbox_alerts_fingerprint_starts_at_status UNIQUE (fingerprint, starts_at, status)
);
CREATE INDEX IF NOT EXISTS ix_inbox_alerts_processed_at_id ON inbox_alerts (processed_at, id);
"""
POSTGRES_DDL = (
    SQLITE_DDL.replace("id INTEGER NOT NULL", "id BIGSERIAL NOT NULL")
    .replace("DATETIME", "TIMESTAMP WITH TIME ZONE")
    .replace("incident_id INTEGER", "incident_id BIGINT")
)

CONFLICT = "ON CONFLICT (fingerprint, starts_at, status) DO NOTHING RETURNING id"


class BadPayload(Exception):
    """The body is JSON but not an Alertmanager payload: 422, like Ballast."""


def _time(value: Any) -> datetime:
    if not isinstance(value, str):
        raise BadPayload("time")
    return datetime.fromisoformat(value).astimezone(UTC)


def parse(body: bytes, now: datetime) -> tuple[list[tuple[Any, ...]], int, int]:
    """Rows (as SQLAlchemy would bind them: aware datetimes, JSON as dicts), received, truncated."""
    data = json.loads(body)
    if not isinstance(data, dict) or not isinstance(data.get("alerts"), list):
        raise BadPayload("alerts")
    group_key = data.get("groupKey")
    truncated = int(data.get("truncatedAlerts") or 0)
    seen: dict[tuple[str, datetime, str], tuple[Any, ...]] = {}
    for alert in data["alerts"]:
        status = alert["status"]
        labels = alert["labels"]
        if status not in ("firing", "resolved") or not isinstance(labels, dict):
            raise BadPayload("alert")
        starts_at = _time(alert["startsAt"])
        ends_at = None
        if status == "resolved" and alert.get("endsAt"):
            ends_at = _time(alert["endsAt"])
        fingerprint = alert["fingerprint"]
        row = (
            "alertmanager",
            fingerprint,
            status,
            starts_at,
            ends_at,
            labels,
            alert.get("annotations") or {},
            alert.get("generatorURL") or None,
            group_key,
            truncated,
            now,
            None,
            None,
            None,
        )
        seen.setdefault((fingerprint, starts_at, status), row)
    return list(seen.values()), len(data["alerts"]), truncated


def _sqlite_time(value: datetime | None) -> str | None:
    # SQLAlchemy's SQLite DateTime storage format, so both tables hold the same text.
    return None if value is None else value.strftime("%Y-%m-%d %H:%M:%S.%f")


class SqliteStore:
    """One connection, one writer thread (or the loop itself with ``inline``)."""

    def __init__(self, path: str, synchronous: str, inline: bool) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        for pragma in (
            "journal_mode=WAL",
            f"synchronous={synchronous}",
            "busy_timeout=30000",
            "wal_autocheckpoint=0",
        ):
            self.conn.execute(f"PRAGMA {pragma}")
        self.conn.executescript(SQLITE_DDL)
        self.inline = inline
        self.writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writer")
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.checkpointer = threading.Thread(target=self._checkpoint_loop, daemon=True)
        self.checkpointer.start()
        self.statements: dict[int, str] = {}

    def _checkpoint_loop(self) -> None:
        reader = sqlite3.connect(self.conn_path(), isolation_level=None)
        while not self.stop.wait(1.0):
            with contextlib.suppress(sqlite3.Error):
                reader.execute("PRAGMA wal_checkpoint(PASSIVE)")
        reader.close()

    def conn_path(self) -> str:
        return str(self.conn.execute("PRAGMA database_list").fetchone()[2])

    def _insert(self, rows: list[tuple[Any, ...]]) -> int:
        sql = self.statements.get(len(rows))
        if sql is None:
            values = ", ".join(["(" + ", ".join("?" * N_COLUMNS) + ")"] * len(rows))
            sql = f"INSERT INTO inbox_alerts ({COLUMNS}) VALUES {values} {CONFLICT}"
            self.statements[len(rows)] = sql
        params: list[Any] = []
        for r in rows:
            params += (
                r[0],
                r[1],
                r[2],
                _sqlite_time(r[3]),
                _sqlite_time(r[4]),
                json.dumps(r[5]),
                json.dumps(r[6]),
                r[7],
                r[8],
                r[9],
                _sqlite_time(r[10]),
                None,
                None,
                None,
            )
        with self.lock:
            self.conn.execute("BEGIN")
            try:
                stored = len(self.conn.execute(sql, params).fetchall())
                self.conn.execute("COMMIT")
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
        return stored

    async def insert(self, rows: list[tuple[Any, ...]]) -> int:
        if self.inline:
            return self._insert(rows)
        return await asyncio.get_running_loop().run_in_executor(self.writer, self._insert, rows)

    async def close(self) -> None:
        self.stop.set()
        self.writer.shutdown()
        self.conn.close()


class PostgresStore:
    """asyncpg pool; one ``INSERT ... RETURNING`` per request, autocommitted."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.pool: Any = None
        self.statements: dict[int, str] = {}

    async def open(self) -> None:
        import asyncpg  # type: ignore[import-untyped]

        self.pool = await asyncpg.create_pool(self.dsn, min_size=10, max_size=20)
        async with self.pool.acquire() as conn:
            await conn.execute(POSTGRES_DDL)

    async def insert(self, rows: list[tuple[Any, ...]]) -> int:
        sql = self.statements.get(len(rows))
        if sql is None:
            groups = []
            for i in range(len(rows)):
                base = i * N_COLUMNS
                groups.append(
                    "("
                    + ", ".join(
                        f"${base + j + 1}::json" if j in (5, 6) else f"${base + j + 1}"
                        for j in range(N_COLUMNS)
                    )
                    + ")"
                )
            sql = f"INSERT INTO inbox_alerts ({COLUMNS}) VALUES {', '.join(groups)} {CONFLICT}"
            self.statements[len(rows)] = sql
        params: list[Any] = []
        for r in rows:
            params += (*r[:5], json.dumps(r[5]), json.dumps(r[6]), *r[7:])
        async with self.pool.acquire() as conn:
            return len(await conn.fetch(sql, *params))

    async def close(self) -> None:
        await self.pool.close()


def create_app(database: str, synchronous: str = "FULL", inline: bool = False) -> Starlette:
    """The baseline ASGI app for ``database`` (``sqlite:///path`` or ``postgresql://...``)."""
    store: SqliteStore | PostgresStore
    if database.startswith("sqlite"):
        store = SqliteStore(database.split(":///", 1)[1], synchronous, inline)
    else:
        store = PostgresStore(database)

    async def alertmanager(request: Request) -> JSONResponse:
        body = await request.body()
        try:
            rows, received, truncated = parse(body, datetime.now(UTC))
        except json.JSONDecodeError as err:
            return JSONResponse({"detail": str(err)}, status_code=400)
        except (BadPayload, KeyError, TypeError, ValueError) as err:
            return JSONResponse({"detail": repr(err)}, status_code=422)
        stored = await store.insert(rows) if rows else 0
        return JSONResponse(
            {
                "received": received,
                "stored": stored,
                "duplicates": received - stored,
                "truncated_alerts": truncated,
            }
        )

    async def readyz(_: Request) -> JSONResponse:
        return JSONResponse({"ready": True})

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        if isinstance(store, PostgresStore):
            await store.open()
        yield
        await store.close()

    return Starlette(
        routes=[
            Route("/webhooks/alertmanager", alertmanager, methods=["POST"]),
            Route("/readyz", readyz),
        ],
        lifespan=lifespan,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", required=True, help="sqlite:///FILE or postgresql://...")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--synchronous", default="FULL", choices=["FULL", "NORMAL"])
    parser.add_argument("--inline", action="store_true", help="SQLite calls on the event loop")
    args = parser.parse_args()
    app = create_app(args.database, args.synchronous, args.inline)
    # The same uvicorn settings as `ballast serve` (bot/cli/serve.py).
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_config=None,
        access_log=False,
        proxy_headers=False,
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":
    main()
