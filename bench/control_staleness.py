"""How soon a control change made elsewhere is served, and how fast a cold store fails.

Run ``python bench/control_staleness.py`` (add ``--json``; ``--rounds`` and ``--database-url``
change the run; the default is a temporary SQLite file). Goals, moved here from tests that
asserted them on the wall clock:

- a change written by another replica or the CLI (another ``BuiltinControlStore`` on the same
  database, sharing no memory) is served by this one within ``DEFAULT_MAX_STALENESS`` (0.1 s)
  plus one database read;
- a store that never read the values, with its database down, fails its second read in well
  under 50 ms (it remembers the failure for a second instead of connecting again).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from actions.errors import ActionError
from bot.controls.store import DEFAULT_MAX_STALENESS, BuiltinControlStore
from bot.store.database import Database

KEY = "bench.tools.web_search.enabled"


def now() -> datetime:
    return datetime.now(UTC)


async def staleness(url: str, rounds: int) -> list[float]:
    served_db, writer_db = Database(url), Database(url)
    await served_db.migrate()
    try:
        served = BuiltinControlStore(served_db, now)
        writer = BuiltinControlStore(writer_db, now)
        seconds: list[float] = []
        for n in range(rounds):
            value = n % 2 == 0
            await served.current()  # a fresh copy, as a busy OFREP endpoint has
            await writer.write(KEY, value, actor="bench", reason="staleness")
            started = time.perf_counter()
            while True:
                control = (await served.current()).values.get(KEY)
                if control is not None and control.value is value:
                    break
                await asyncio.sleep(0.001)
            seconds.append(time.perf_counter() - started)
        return seconds
    finally:
        await served_db.close()
        await writer_db.close()


async def cold_failure() -> float:
    """Second read of a never-read store whose database is unreachable (a closed port)."""
    db = Database("postgresql+asyncpg://nobody@127.0.0.1:9/none", connect_args={"timeout": 2})
    try:
        store = BuiltinControlStore(db, now)
        for _ in range(2):
            started = time.perf_counter()
            with contextlib.suppress(ActionError):
                await store.current()
        return time.perf_counter() - started
    finally:
        await db.close()


async def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        seconds = await staleness(url, args.rounds)
    failure = await cold_failure()
    ordered = sorted(seconds)
    result: dict[str, Any] = {
        "rounds": args.rounds,
        "max_staleness_s": DEFAULT_MAX_STALENESS,
        "staleness_median_ms": statistics.median(ordered) * 1000,
        "staleness_p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
        "staleness_max_ms": ordered[-1] * 1000,
        "cold_second_failure_ms": failure * 1000,
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for name, value in result.items():
            print(f"{name:26} {value:.2f}" if isinstance(value, float) else f"{name:26} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
