"""What this machine gives the share's path: Python warm and cold, the disk's sync, PostgreSQL.

Run ``python bench/machine.py`` (about 10 s; ``--postgres URL`` or ``BENCH_POSTGRES_URL``
for another server, ``--no-postgres`` to skip it, ``--json FILE`` for the numbers). Every
benchmark report in docs/benchmarks.md starts with a line about its machine; this prints that
line's numbers the same way each time, on core 0, where ``bench/loop.py`` and
``bench/engine.py`` pin the server.

Why each number:

- **Warm Python**: a loop of 10 million additions (seconds). How fast the interpreter runs
  code that stays in the CPU's caches: the engine's throughput under a storm tracks it.
- **Cold Python**: routing one alert through the shipped runbooks (``Catalog.best``: the
  matcher index, re2, pydantic models; about 10 µs warm) back to back, and as the first call
  after the process slept 10 ms and 100 ms. Ballast's share (``bench/loop.py``) is a path run
  once per alert, after the server sat idle: on the shared virtual machines measured here the
  same call took 15-25 times as long after 10 ms of sleep, with or without another task
  keeping the core busy meanwhile (the caches are someone else's by then). The share's CPU is
  paid at this speed, not at the warm one.
- **The disk's sync**: ``fdatasync`` after a 4 KiB append, as a commit's WAL write (SQLite's
  each commit, PostgreSQL's each commit that waits for its flush), p50 and p99.
- **PostgreSQL's round trip**: ``SELECT 1`` through asyncpg back to back, and after a 10 ms
  pause (the share's statements are the second kind).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ingest import PG_ADMIN_DSN  # noqa: E402  (bench/ is on sys.path when run as a script)
from loop import SERVER_CORE, percentile  # noqa: E402

LABELS = {
    "alertname": "ToolCallFailureRate",
    "service": "support-assistant",
    "env": "prod",
    "severity": "warning",
}


# Module-level code (names in a dict, as ``python -c`` runs it): how earlier reports timed it.
_LOOP = compile("total = 0\nfor i in range(10_000_000):\n    total += i\n", "<loop>", "exec")


def warm_loop_seconds() -> float:
    started = time.perf_counter()
    exec(_LOOP, {})
    return time.perf_counter() - started


def shipped_routing() -> Callable[[dict[str, str]], Any]:
    """Routing by the shipped runbooks (``Catalog.best``), past its first-use costs."""
    from bot.runbooks.loader import load_catalog

    route: Callable[[dict[str, str]], Any] = load_catalog([REPO / "runbooks"]).catalog.best
    for n in range(200):
        route({**LABELS, "tool": f"warm-up-{n}"})
    return route


def routing_us(route: Callable[[dict[str, str]], Any], after_sleep: float, samples: int) -> float:
    """Median µs of routing a new alert (a tool never seen) after sleeping ``after_sleep``."""
    times = []
    for n in range(samples):
        if after_sleep:
            time.sleep(after_sleep)
        labels = {**LABELS, "tool": f"tool-{after_sleep}-{n}"}
        started = time.perf_counter()
        route(labels)
        times.append((time.perf_counter() - started) * 1e6)
    return statistics.median(times)


def sync_ms(folder: Path, samples: int = 300) -> tuple[float, float]:
    """fdatasync after a 4 KiB append: p50, p99 (ms)."""
    path = folder / "sync-probe.bin"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    times = []
    try:
        for _ in range(samples):
            os.write(fd, b"\0" * 4096)
            started = time.perf_counter()
            os.fdatasync(fd)
            times.append((time.perf_counter() - started) * 1e3)
    finally:
        os.close(fd)
        path.unlink()
    return percentile(times, 50), percentile(times, 99)


async def postgres_ms(url: str, samples: int = 300) -> tuple[float, float]:
    """asyncpg ``SELECT 1``: median ms back to back, and after a 10 ms pause."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        for _ in range(50):
            await conn.fetchval("SELECT 1")
        back_to_back, paused = [], []
        for n in range(samples):
            if n % 2:
                await asyncio.sleep(0.01)
            started = time.perf_counter()
            await conn.fetchval("SELECT 1")
            (paused if n % 2 else back_to_back).append((time.perf_counter() - started) * 1e3)
    finally:
        await conn.close()
    return statistics.median(back_to_back), statistics.median(paused)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", default=PG_ADMIN_DSN, help="asyncpg URL for the round trip")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--dir", type=Path, default=None, help="where to probe the disk's sync")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    os.sched_setaffinity(0, {SERVER_CORE})
    found: dict[str, Any] = {"cpu": _cpu_model(), "load_before": os.getloadavg()}
    found["warm_loop_s"] = warm_loop_seconds()
    route = shipped_routing()
    found["route_us_warm"] = routing_us(route, 0.0, 2000)
    found["route_us_after_10ms"] = routing_us(route, 0.01, 100)
    found["route_us_after_100ms"] = routing_us(route, 0.1, 30)
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="ballast-machine-") as folder:
        found["sync_ms_p50"], found["sync_ms_p99"] = sync_ms(Path(folder))
    if not args.no_postgres:
        try:
            found["pg_select1_ms"], found["pg_select1_after_10ms_ms"] = asyncio.run(
                postgres_ms(args.postgres)
            )
        except (OSError, ImportError) as err:
            found["pg_error"] = f"{type(err).__name__}: {err}"
    found["load_after"] = os.getloadavg()
    cold = found["route_us_after_10ms"] / found["route_us_warm"]
    lines = [
        f"machine: {found['cpu']}, {os.cpu_count()} cores; measured on core {SERVER_CORE}",
        f"- warm Python: 10 million additions in {found['warm_loop_s']:.2f} s",
        f"- cold Python: routing an alert {found['route_us_warm']:.1f} µs back to back, "
        f"{found['route_us_after_10ms']:.1f} µs after 10 ms asleep ({cold:.0f} times), "
        f"{found['route_us_after_100ms']:.1f} µs after 100 ms",
        f"- the disk's sync (fdatasync after 4 KiB): p50 {found['sync_ms_p50']:.2f} ms, "
        f"p99 {found['sync_ms_p99']:.2f} ms",
    ]
    if "pg_select1_ms" in found:
        lines.append(
            f"- PostgreSQL SELECT 1 (asyncpg): {found['pg_select1_ms']:.2f} ms back to back, "
            f"{found['pg_select1_after_10ms_ms']:.2f} ms after 10 ms"
        )
    elif "pg_error" in found:
        lines.append(f"- PostgreSQL: not measured ({found['pg_error']})")
    lines.append(
        "- load average before / after: "
        + " / ".join(" ".join(f"{v:.2f}" for v in found[k]) for k in ("load_before", "load_after"))
    )
    print("\n".join(lines))
    if args.json:
        args.json.write_text(json.dumps(found, indent=2))
    return 0


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
