"""The incident engine's instructions per alert: a measure a busy or shared machine leaves alone.

Run ``python bench/engine_instructions.py`` (SQLite and PostgreSQL, both shapes, about three
minutes; ``--db``, ``--shape``, ``--alerts``; ``--json FILE``). Needs valgrind. To compare two
trees, run it from each (``git worktree add``): the counts repeat to about 0.2%, where the
throughput of ``bench/engine.py`` on the same host varied by 20% between runs of one tree.

How: this script runs itself under ``valgrind --tool=callgrind --instr-atstart=no``, which
counts the instructions the process executes (every thread: SQLite's work on its own thread
included; PostgreSQL's server is another process and is not counted) only while switched on.
Inside, it builds the server's services in-process (``bot.app.build_services``, ``runbooks/``,
the server's GC policy), stores 400 alerts of the shape through the webhooks' own writer
(``bench/engine.py``'s ``prefill``) and lets the engine process them (a warm-up: statements
compiled, incidents opened), stores ``--alerts`` more, switches counting on
(``callgrind_control -i on``), runs ``IncidentEngine.process_pending()`` until the inbox is
empty, switches it off and divides. Shapes as in ``bench/engine.py``: ``storm20`` (every alert
joins one of the 20 incidents open since the warm-up); ``distinct2000`` (2,000 keys: with the
default 2,000 alerts, 1,600 open new triage incidents).

Instructions are not time: a cache miss or a system call costs more than its instructions
say. Use this to tell whether a change made the engine's own work smaller, and
``bench/engine.py`` for what that does to throughput on a machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != REPO / "bench"]
sys.path.insert(0, str(REPO))
sys.path.insert(1, str(REPO / "bench"))

WARM_UP = 400
DATABASE = "bench_instructions"
_INSIDE = "ENGINE_INSTRUCTIONS_UNDER_VALGRIND"  # not BALLAST_*: the settings refuse unknown ones


def _count(on: bool) -> None:
    subprocess.run(
        ["callgrind_control", "-i", "on" if on else "off", str(os.getpid())],
        check=True,
        capture_output=True,
    )


async def _drain(db: str, shape: str, alerts: int) -> None:
    """Inside valgrind: warm up, store ``alerts`` more, count only their processing."""
    import engine as bench_engine  # bench/engine.py
    import ingest

    from bot.app import build_services
    from bot.config import BallastConfig
    from bot.runtime.gc_tuning import freeze_startup_heap
    from bot.settings import Settings

    workdir = Path(tempfile.mkdtemp(prefix="ballast-instructions-"))
    url = await ingest.fresh_database(db, DATABASE, workdir)

    class Target:
        database = url

    await bench_engine.prefill(Target, shape, WARM_UP, 1)  # type: ignore[arg-type]
    services = build_services(
        Settings(database_url=url, runbooks=REPO / "runbooks"), BallastConfig()
    )
    await services.db.migrate()
    freeze_startup_heap()  # as the server does once it has started
    if await services.engine.process_pending() != WARM_UP:
        raise SystemExit("the warm-up was not processed whole")
    await services.auto.drain()
    await bench_engine.prefill(Target, shape, alerts, 2)  # type: ignore[arg-type]
    _count(True)
    processed = await services.engine.process_pending()
    _count(False)
    await services.auto.drain()
    await services.db.close()
    shutil.rmtree(workdir, ignore_errors=True)
    if processed != alerts:
        raise SystemExit(f"processed {processed} of {alerts} alerts")


def measure(db: str, shape: str, alerts: int) -> int:
    """Instructions for processing ``alerts`` alerts (a run under valgrind)."""
    with tempfile.TemporaryDirectory() as out:
        run = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                "--instr-atstart=no",
                f"--callgrind-out-file={out}/callgrind.out",
                sys.executable,
                __file__,
                "--db",
                db,
                "--shape",
                shape,
                "--alerts",
                str(alerts),
            ],
            env={**os.environ, _INSIDE: "1", "PYTHONHASHSEED": "0"},
            capture_output=True,
            text=True,
            check=False,
        )
    found = re.search(r"Collected : (\d+)", run.stderr)
    if run.returncode != 0 or found is None:
        raise SystemExit(f"the run under valgrind failed ({run.returncode}):\n{run.stderr[-3000:]}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default="sqlite,postgres", type=lambda v: v.split(","))
    parser.add_argument("--shape", default="storm20,distinct2000", type=lambda v: v.split(","))
    parser.add_argument("--alerts", type=int, default=2000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if os.environ.get(_INSIDE):
        asyncio.run(_drain(args.db[0], args.shape[0], args.alerts))
        return
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        raise SystemExit("needs valgrind (Debian: apt-get install valgrind)")
    results = []
    print("| db | shape | alerts | instructions per alert |")
    print("| --- | --- | ---: | ---: |")
    for db in args.db:
        for shape in args.shape:
            total = measure(db, shape, args.alerts)
            per_alert = round(total / args.alerts)
            results.append(
                {"db": db, "shape": shape, "alerts": args.alerts, "per_alert": per_alert}
            )
            print(f"| {db} | {shape} | {args.alerts:,} | {per_alert:,} |", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"tree": str(REPO), "results": results}, indent=2))


if __name__ == "__main__":
    main()
