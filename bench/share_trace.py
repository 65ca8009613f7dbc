"""Where Ballast's share goes, step by step: timestamps inside the server, for ``bench/loop.py``'s
runs.

Run ``python bench/share_trace.py`` (SQLite, 200 runs, about 30 s; ``--db postgres``,
``--runs N``, ``--json FILE`` for every run's steps). ``bench/loop.py`` measures the share from
outside and splits it into five stages from the rows' own timestamps; this starts the same
server (``python -m bot serve`` on core 0, ``runbooks/``, a fresh database) with hooks that
stamp ``time.perf_counter_ns()``:

- at the webhook's handler, the inbox writer's group (its INSERT and commit), the engine's
  batch, the batch's incident writes (``run_batch``) and the opening listener that claims and
  writes the first mitigation (``AutoMitigator.incidents_opening``), each at its start and end;
- around every SQL statement (SQLAlchemy's cursor events, with the statement's first words),
  at each COMMIT and as each session's transaction ends (not a savepoint's);
- at each OFREP evaluation and its answer.

It prints, for each step of the path from the webhook's arrival to the first OFREP answer with
the new value, the median time since the arrival and since the step before, so the slowest
steps (and the statements between them) are visible, and how many OFREP evaluations the
server served meanwhile. Each stamp also reads the event loop's thread's CPU time
(``time.thread_time_ns()``), so each step shows how much of its time that thread was
running (Ballast's Python, the SQLite statements it runs inline, OFREP evaluations served
in a wait) rather than waiting (a PostgreSQL round trip, a thread hop, the scheduler). The
hooks wrap functions by name (:data:`HOOKS`): a renamed one fails the run at the server's
start. Each stamp costs a few microseconds, so the share measured here is a little above
``bench/loop.py``'s.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import functools
import importlib
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != REPO / "bench"]
sys.path.insert(0, str(REPO))
sys.path.insert(1, str(REPO / "bench"))

# (module, attribute, step): async functions stamped at their start and end. Module-level
# functions are replaced where their callers look them up (the module's global, at call time).
HOOKS = (
    ("bot.api.webhooks", "_handle", "webhook"),
    ("bot.store.inbox_writer", "InboxWriter._write", "inbox write"),
    ("bot.incidents.engine", "IncidentEngine._set_based_batch", "engine batch"),
    ("bot.incidents.engine", "run_batch", "incident writes"),
    ("bot.execution.auto", "AutoMitigator.incidents_opening", "first mitigation"),
)
WEBHOOK = "webhook"
SERVED = "ofrep answer false"

# -- the server's side ------------------------------------------------------------------------

_stamps: list[tuple[int, int, str]] = []
_LOOP_THREAD = threading.main_thread()  # the server's event loop runs on it


def stamp(label: str) -> None:
    """The time now, and the loop's thread's CPU time so far (-1 from any other thread)."""
    cpu = time.thread_time_ns() if threading.current_thread() is _LOOP_THREAD else -1
    _stamps.append((time.perf_counter_ns(), cpu, label))


def _stamped(step: str, call: Any) -> Any:
    @functools.wraps(call)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        stamp(step)
        try:
            return await call(*args, **kwargs)
        finally:
            stamp(f"{step} end")

    return wrapper


def _transaction_ended(_session: Any, transaction: Any) -> None:
    if transaction.parent is None:  # not a savepoint's
        stamp("transaction ended")


def install_hooks(out: Path) -> None:
    """Wrap :data:`HOOKS`, listen to SQLAlchemy's events, and write the stamps at exit."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine
    from sqlalchemy.orm import Session

    for module_name, attribute, step in HOOKS:
        module = importlib.import_module(module_name)
        owner: Any = module
        *path, name = attribute.split(".")
        for part in path:
            owner = getattr(owner, part)
        setattr(owner, name, _stamped(step, getattr(owner, name)))

    ofrep = importlib.import_module("bot.api.ofrep")
    authorize, answer = ofrep._authorize, ofrep._json

    async def authorize_stamped(request: Any) -> None:
        stamp("ofrep")
        await authorize(request)

    def answer_stamped(body: dict[str, Any], status: int, headers: Any = None) -> Any:
        stamp(f"ofrep answer {json.dumps(body.get('value'))}")
        return answer(body, status, headers)

    ofrep._authorize, ofrep._json = authorize_stamped, answer_stamped

    def before(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        stamp("sql " + " ".join(statement.split()[:3]))

    def after(*_: Any) -> None:
        stamp("sql done")

    event.listen(Engine, "before_cursor_execute", before)
    event.listen(Engine, "after_cursor_execute", after)
    event.listen(Engine, "commit", lambda _conn: stamp("commit"))
    event.listen(Session, "after_transaction_end", _transaction_ended)

    def dump() -> None:
        out.write_text("".join(f"{t} {cpu} {label}\n" for t, cpu, label in _stamps))

    atexit.register(dump)


def serve(out: Path, argv: list[str]) -> None:
    install_hooks(out)
    from bot.cli import main

    sys.argv = ["ballast", *argv]
    main()


# -- the analysis -----------------------------------------------------------------------------


# A step of a run: ms since the webhook's arrival, the loop thread's CPU ms since its stamp
# before (None where a stamp came from another thread), and the step's label.
Step = tuple[float, float | None, str]


def read_stamps(path: Path) -> list[tuple[float, float, str]]:
    """(ms, the loop thread's CPU ms or -1, label) per stamp, in order."""
    stamps = []
    for line in path.read_text().splitlines():
        ns, cpu, label = line.split(" ", 2)
        stamps.append((int(ns) / 1e6, int(cpu) / 1e6 if cpu != "-1" else -1.0, label))
    return stamps


def runs_of(stamps: list[tuple[float, float, str]]) -> list[list[Step]]:
    """Each run's steps from the webhook's arrival to the first answer with the value (ms
    since the arrival, each label numbered by its occurrence), OFREP evaluations left out
    but counted (``polls``; their CPU counts in the step they fell in), and the loop thread's
    CPU over the whole path (``loop cpu``); a run that never saw the value is dropped."""
    runs: list[list[tuple[float, float, str]]] = []
    current: list[tuple[float, float, str]] | None = None
    for at, cpu, label in stamps:
        if label == WEBHOOK:
            current = [(at, cpu, label)]
            runs.append(current)
        elif current is not None:
            current.append((at, cpu, label))
    steps = []
    for run in runs:
        start, start_cpu, _ = run[0]
        served = next(((at, cpu) for at, cpu, label in run if label == SERVED), None)
        if served is None:
            continue
        seen: Counter[str] = Counter()
        path: list[Step] = []
        polls = 0
        cpu_before = start_cpu
        for at, cpu, label in run:
            if at > served[0]:
                break
            if label.startswith("ofrep"):
                polls += label == "ofrep"
                continue
            seen[label] += 1
            spent = None  # a stamp from another thread: no CPU of the loop's to compare
            if cpu >= 0:
                spent = cpu - cpu_before if cpu_before >= 0 else None
                cpu_before = cpu
            path.append(
                (at - start, spent, f"{label} #{seen[label]}" if seen[label] > 1 else label)
            )
        spent = served[1] - cpu_before if served[1] >= 0 and cpu_before >= 0 else None
        path.append((served[0] - start, spent, SERVED))
        path.append((float(polls), None, "polls"))
        if served[1] >= 0 and start_cpu >= 0:
            path.append((served[1] - start_cpu, None, "loop cpu"))
        steps.append(path)
    return steps


def report(steps: list[list[Step]]) -> str:
    times: dict[str, list[float]] = defaultdict(list)
    cpus: dict[str, list[float]] = defaultdict(list)
    for path in steps:
        for at, cpu, label in path:
            times[label].append(at)
            if cpu is not None:
                cpus[label].append(cpu)
    common = {label: v for label, v in times.items() if len(v) >= 0.8 * len(steps)}
    polls = common.pop("polls", [0.0])
    loop_cpu = common.pop("loop cpu", [0.0])
    ordered = sorted(common.items(), key=lambda item: statistics.median(item[1]))
    lines = [
        f"{len(steps)} runs; median {statistics.median(polls):.0f} OFREP evaluations served "
        f"during the path; the event loop's thread ran {statistics.median(loop_cpu):.2f} ms "
        f"of it (p50)",
        "",
        "| step | ms since the webhook (p50) | since the step before | loop thread's CPU in "
        "it (p50) | p90 |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    before = 0.0
    for label, values in ordered:
        p50 = statistics.median(values)
        p90 = sorted(values)[int(0.9 * (len(values) - 1))]
        ran = f"{statistics.median(cpus[label]):.2f}" if cpus.get(label) else "—"
        lines.append(f"| {label} | {p50:.2f} | {p50 - before:+.2f} | {ran} | {p90:.2f} |")
        before = p50
    return "\n".join(lines)


# -- the client's side ------------------------------------------------------------------------


def run(db: str, runs: int, warm_up: int, workdir: Path) -> list[list[Step]]:
    import loop  # bench/loop.py: the same server, webhook and OFREP reader

    out = workdir / "stamps.txt"
    if db == "sqlite":
        database = f"sqlite:///{workdir / 'trace.db'}"
    else:
        database = asyncio.run(loop.fresh_postgres("bench_share_trace"))
    server = loop.Server(
        "trace",
        database,
        loop.SERVER_CORE,
        workdir,
        command=(str(Path(__file__)), "--serve", str(out), "--"),
    )
    os.sched_setaffinity(0, {loop.CLIENT_CORE})
    server.start()
    webhooks, reads = loop.Connection(server.port), loop.Connection(server.port)
    prefix = f"trace{int(time.time())}"
    try:
        for n in range(warm_up + runs):
            loop.run_once(webhooks, reads, prefix, n)
            time.sleep(loop.GAP_SECONDS)
    finally:
        webhooks.close()
        reads.close()
        server.stop()
    return runs_of(read_stamps(out))[warm_up:]


def main(argv: list[str]) -> int:
    if argv[:1] == ["--serve"]:
        serve(Path(argv[1]), argv[3:])  # --serve OUT -- serve --port N
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--warm-up", type=int, default=20)
    parser.add_argument("--json", type=Path, help="also write every run's steps here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ballast-share-trace-") as folder:
        steps = run(args.db, args.runs, args.warm_up, Path(folder))
    if not steps:
        print("no run saw the value served; see the server's log", file=sys.stderr)
        return 1
    print(f"{args.db}: " + report(steps))
    if args.json:
        args.json.write_text(json.dumps(steps))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
