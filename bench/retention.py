"""The inbox's retention: how fast a pass deletes expired alert states, and how long each batch
holds the database (on SQLite: the write lock every webhook and the engine wait for).

Run ``python bench/retention.py`` (SQLite and PostgreSQL, 100,000 rows each, about a minute;
``--db``, ``--rows``, ``--json FILE``). How: a fresh database (a SQLite file, or a PostgreSQL
database made for the run) is filled with ``--rows`` alert states through the webhooks' own
group-commit writer (``bench/engine.py``'s ``prefill``, the distinct2000 shape), all marked
processed and resolved as the engine would have left them, then
``bot.store.inbox_retention.prune_batch`` runs back to back (no rests, this process pinned to
one core) with a clock 31 days on, until the inbox is empty. Reported: rows deleted per second
of the pass's own time, and each batch's duration (p50, p99, max): a pass rests twice that
between batches in the server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != REPO / "bench"]
sys.path.insert(0, str(REPO))
sys.path.insert(1, str(REPO / "bench"))

DATABASE = "bench_retention"


async def measure(db: str, rows: int) -> dict[str, Any]:
    import engine as bench_engine  # bench/engine.py
    import ingest
    from sqlalchemy import text

    from bot.settings import Settings
    from bot.store.database import Database
    from bot.store.inbox_retention import BATCH, prune_batch

    workdir = Path(tempfile.mkdtemp(prefix="ballast-retention-"))
    url = await ingest.fresh_database(db, DATABASE, workdir)

    class Target:
        database = url

    await bench_engine.prefill(Target, "distinct2000", rows, 1)  # type: ignore[arg-type]
    database = Database(Settings(database_url=url).async_database_url)
    async with database.engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE inbox_alerts SET processed_at = received_at, "
                "outcome = 'resolved_without_incident', status = 'resolved'"
            )
        )
        if db != "sqlite":
            await conn.execute(text("ANALYZE inbox_alerts"))
    cutoff = datetime.now(UTC) + timedelta(days=1)  # 31 days on, with 30 days kept
    batches: list[float] = []
    deleted, after = 0, 0
    started = time.perf_counter()
    while True:
        began = time.perf_counter()
        batch = await prune_batch(database, cutoff, after)
        batches.append(time.perf_counter() - began)
        deleted += batch.deleted
        after = batch.last_id
        if batch.done:
            break
    seconds = time.perf_counter() - started
    await database.close()
    shutil.rmtree(workdir, ignore_errors=True)
    ordered = sorted(batches)
    return {
        "db": db,
        "rows": rows,
        "deleted": deleted,
        "batch_rows": BATCH,
        "rows_per_second": round(deleted / seconds),
        "batch_ms_p50": round(ingest.percentile(ordered, 50) * 1000, 1),
        "batch_ms_p99": round(ingest.percentile(ordered, 99) * 1000, 1),
        "batch_ms_max": round(ordered[-1] * 1000, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default="sqlite,postgres", type=lambda v: v.split(","))
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    os.sched_setaffinity(0, {0})
    results = []
    print("| db | rows | rows/s | batch p50 | p99 | max |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for db in args.db:
        r = asyncio.run(measure(db, args.rows))
        if r["deleted"] != args.rows:
            raise SystemExit(f"{db}: deleted {r['deleted']} of {args.rows} rows")
        results.append(r)
        print(
            f"| {db} | {r['rows']:,} | {r['rows_per_second']:,} | {r['batch_ms_p50']} ms "
            f"| {r['batch_ms_p99']} ms | {r['batch_ms_max']} ms |",
            flush=True,
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
