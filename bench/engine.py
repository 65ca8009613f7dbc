"""The incident engine: throughput alone and under a 3,000 alerts/s intake, and its memory.

Run ``python bench/engine.py`` (SQLite and PostgreSQL side by side, about 15 minutes with the
default sizes), ``--quick`` for a few minutes; ``--backlog`` sets the drained backlog of the
memory phase (1,000,000 by default), ``--json FILE`` writes the results, ``--slack`` runs
the servers with Slack configured (``bench/slack.py``'s emulator) instead of the console.
Goals (issue 16): at least 5,000 alerts/s per replica, alone and under intake, for a storm
into 20 incidents and for 2,000 distinct incidents; resident memory at most 300 MB through a
60 s storm at 3,000 alerts/s and while draining the backlog.

Method:

- The server is the real ``python -m bot serve`` (runbooks from ``runbooks/``, no Slack: the
  console sink), pinned with ``taskset -c 0``; this process pins itself to core 1 and reuses
  ``bench/ingest.py``'s load generator (open loop, latency from the scheduled send time).
- **Alone**: the inbox is filled directly in the database (``bot.store.inbox.store_batch``)
  while no server runs, then the server starts and drains it. Throughput is the processed count
  (``ballast_alerts_processed_total``, polled every 0.25 s) between the first sample with work
  done and the sample at which everything is processed, over the time between them; CPU per
  alert is the server's CPU over the same samples (``/proc/<pid>/stat``), which survives a
  shared machine better than the rate does.
- **Under intake**: the same backlog, and once the server has begun on it, webhooks at 3,000
  alerts/s (10 alerts per notification) for the phase; throughput is what the engine processed
  during the storm's window. With a backlog to work on, the engine never waits for alerts, so
  the figure is its capacity while sharing the core with the webhooks, not the intake rate.
- **Shapes**: ``storm20``: every alert goes to one of 20 incidents (``ToolCallFailureRate`` for
  20 (service, tool) pairs: the tool-failure runbook, its auto mitigation run once per incident);
  ``distinct2000``: alerts spread over 2,000 incidents (2,000 alertnames no runbook matches,
  triage incidents, so no mitigation runs). Every alert has a fingerprint never sent before.
- **Memory**: resident set size (``VmRSS``) of the server sampled every 0.5 s through a 60 s
  storm at 3,000 alerts/s into the storm20 shape (and the inbox lag the server reports,
  ``ballast_inbox_lag_seconds``), and while it drains a backlog of ``--backlog`` alerts.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import json
import os
import signal
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != REPO / "bench"]
sys.path.insert(0, str(REPO))
sys.path.insert(1, str(REPO / "bench"))

import ingest  # noqa: E402
from ingest import (  # noqa: E402
    CLIENT_CORE,
    Group,
    Payloads,
    Server,
    Target,
    core_busy_seconds,
    kill_spawned,
    open_loop,
    percentile,
    postgres_cpu_seconds,
    process_cpu_seconds,
    reset_postgres,
)

GOAL_RATE = 5000.0
GOAL_RSS_MB = 300.0
GOAL_LAG_SECONDS = 1.0  # inbox lag p99 through the 60 s storm
INTAKE_RATE = 3000.0
ALERTS_PER_NOTIFICATION = 10
DATABASE = "bench_engine"


def shape_groups(shape: str) -> list[Group]:
    if shape == "storm20":
        return [
            Group(
                {
                    "alertname": "ToolCallFailureRate",
                    "service": f"support-assistant-{k % 4}",
                    "tool": f"tool-{k}",
                    "env": "prod",
                    "severity": "critical",
                },
                "Tool call failure rate above 10%",
            )
            for k in range(20)
        ]
    return [
        Group(
            {
                "alertname": f"BenchDistinct{k:04d}",
                "service": "bench-engine",
                "env": "prod",
                "severity": "warning",
            },
            "An alert no runbook knows (a triage incident of its own)",
        )
        for k in range(2000)
    ]


def payloads(shape: str, tag: int) -> Payloads:
    made = Payloads(ALERTS_PER_NOTIFICATION, tag, "127.0.0.1")
    made.groups = shape_groups(shape)
    made.templates = [made._template(g) for g in made.groups]
    return made


class EngineServer(Server):
    """``bench/ingest.py``'s server, on a database of this benchmark's own."""

    def _database_url(self) -> str:
        if self.target.db == "sqlite":
            return f"sqlite:///{self.workdir / f'engine-{self.port}.db'}"
        return f"{ingest.PG_ADMIN_DSN.rsplit('/', 1)[0]}/{DATABASE}"

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def scrape(self) -> dict[str, float]:
        """processed (all outcomes), inbox lag and pending, from /metrics."""
        out = {"processed": 0.0, "lag": float("nan"), "pending": float("nan")}
        scrape = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/metrics",
            headers={"Authorization": f"Bearer {ingest.METRICS_TOKEN}"},  # closed by default
        )
        with urllib.request.urlopen(scrape, timeout=30) as answer:
            for line in answer.read().decode().splitlines():
                if line.startswith("ballast_alerts_processed_total{"):
                    out["processed"] += float(line.rsplit(" ", 1)[1])
                elif line.startswith("ballast_inbox_lag_seconds "):
                    out["lag"] = float(line.split()[1])
                elif line.startswith("ballast_inbox_pending "):
                    out["pending"] = float(line.split()[1])
        return out


async def prefill(server: EngineServer, shape: str, count: int, tag: int) -> float:
    """Store ``count`` alerts of ``shape`` in the server's inbox (the server is not running),
    through the webhooks' own group-commit writer; returns the seconds it took."""
    from bot.intake.alert import Alert, AlertBatch, AlertSource, AlertStatus
    from bot.settings import Settings
    from bot.store.database import Database
    from bot.store.inbox_writer import InboxWriter

    db = Database(Settings(database_url=server.database).async_database_url)
    await db.migrate()
    writer = InboxWriter(db)
    groups = shape_groups(shape)
    started = time.perf_counter()
    at = datetime(2026, 11, 27, 1, 9, 20, tzinfo=UTC)

    def batch(first: int, size: int) -> AlertBatch:
        alerts = []
        for serial in range(first, min(count, first + size)):
            group = groups[serial % len(groups)]
            alerts.append(
                Alert(
                    fingerprint=f"{tag:04x}{serial:012x}",
                    status=AlertStatus.FIRING,
                    labels={**group.labels, "instance": f"pod-{serial}", "job": "llm-metrics"},
                    annotations={"summary": group.summary},
                    starts_at=at,
                    source=AlertSource.ALERTMANAGER,
                )
            )
        return AlertBatch(AlertSource.ALERTMANAGER, alerts)

    size = 500
    firsts = list(range(0, count, size))
    for at_once in range(0, len(firsts), 8):
        await asyncio.gather(
            *(
                writer.store(batch(first, size), datetime.now(UTC))
                for first in firsts[at_once : at_once + 8]
            )
        )
    await db.close()
    return time.perf_counter() - started


@dataclass
class Sample:
    at: float
    processed: float
    cpu: float
    rss_mb: float
    lag: float


@dataclass
class Result:
    db: str
    phase: str  # alone | intake | storm | drain
    shape: str
    alerts: int = 0
    seconds: float = 0.0
    rate: float = 0.0
    cpu_us_per_alert: float = 0.0
    max_rss_mb: float = 0.0
    lag_p99: float = float("nan")
    lag_max: float = float("nan")
    webhook_p99_ms: float = float("nan")
    webhook_errors: int = 0
    stored: int = 0
    postgres_us_per_alert: float = float("nan")
    other_load_cores: float = float("nan")
    notes: list[str] = field(default_factory=list)


class Load:
    """CPU of both cores spent by anything but the server, this process and PostgreSQL (the
    machine is shared), and PostgreSQL's own, over a phase."""

    def __init__(self, server: EngineServer) -> None:
        self.server = server
        self.start = self._now()

    def _now(self) -> tuple[float, float, float, float, float]:
        return (
            time.perf_counter(),
            core_busy_seconds(),
            self.server.cpu(),
            process_cpu_seconds(os.getpid()),
            postgres_cpu_seconds(),
        )

    def finish(self, result: Result, alerts: float) -> None:
        end = self._now()
        wall, busy, server, own, pg = (b - a for a, b in zip(self.start, end, strict=True))
        result.other_load_cores = (busy - server - own - pg) / wall
        if self.server.target.db == "postgres" and alerts:
            result.postgres_us_per_alert = pg / alerts * 1e6


class Sampler:
    """Polls the server every ``every`` seconds from a thread-free asyncio task."""

    def __init__(self, server: EngineServer, every: float) -> None:
        self.server = server
        self.every = every
        self.samples: list[Sample] = []
        self._task: asyncio.Task[None] | None = None

    def take(self) -> Sample:
        scraped = self.server.scrape()
        sample = Sample(
            time.perf_counter(),
            scraped["processed"],
            self.server.cpu(),
            self.server.rss_mb(),
            scraped["lag"],
        )
        self.samples.append(sample)
        return sample

    async def _run(self) -> None:
        while True:
            await asyncio.to_thread(self.take)
            await asyncio.sleep(self.every)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def until(self, total: float, within: float) -> Sample:
        """Wait until ``total`` alerts are processed (or ``within`` seconds pass)."""
        deadline = time.perf_counter() + within
        while time.perf_counter() < deadline:
            if self.samples and self.samples[-1].processed >= total:
                return self.samples[-1]
            await asyncio.sleep(self.every / 2)
        return self.samples[-1]


async def started_server(db: str, workdir: Path) -> EngineServer:
    server = EngineServer(Target("ballast", db), workdir)
    if db == "postgres":
        await reset_postgres(DATABASE)
    return server


def drain_rate(samples: list[Sample], total: float) -> tuple[float, float, float, float]:
    """(alerts, seconds, rate, CPU µs per alert) from the first sample with work done to the
    first at which ``total`` was reached."""
    begun = next((s for s in samples if s.processed > 0), None)
    done = next((s for s in samples if s.processed >= total), samples[-1])
    if begun is None or done.at <= begun.at:
        return 0.0, 0.0, 0.0, float("nan")
    alerts = done.processed - begun.processed
    seconds = done.at - begun.at
    return alerts, seconds, alerts / seconds, (done.cpu - begun.cpu) / alerts * 1e6


async def phase_alone(db: str, shape: str, count: int, workdir: Path, tag: int) -> Result:
    server = await started_server(db, workdir)
    filled = await prefill(server, shape, count, tag)
    server.start()
    load = Load(server)
    sampler = Sampler(server, 0.25)
    sampler.start()
    await sampler.until(count, within=max(120.0, count / 500))
    await sampler.stop()
    alerts, seconds, rate, cpu = drain_rate(sampler.samples, count)
    result = Result(db, "alone", shape, int(alerts), seconds, rate, cpu)
    load.finish(result, sampler.samples[-1].processed)
    server.stop()
    result.max_rss_mb = max(s.rss_mb for s in sampler.samples)
    result.notes.append(f"backlog of {count} stored in {filled:.1f} s before the server started")
    return result


async def phase_intake(
    db: str, shape: str, count: int, seconds: float, workdir: Path, tag: int
) -> Result:
    server = await started_server(db, workdir)
    await prefill(server, shape, count, tag)
    server.start()
    sampler = Sampler(server, 0.25)
    sampler.start()
    await sampler.until(1, within=60)
    bodies = payloads(shape, tag + 1)
    load = Load(server)
    before = sampler.take()
    samples = await open_loop(server.port, bodies, INTAKE_RATE, seconds)
    after = sampler.take()
    await sampler.stop()
    alerts = after.processed - before.processed
    window = after.at - before.at
    result = Result(db, "intake", shape, int(alerts), window, alerts / window)
    load.finish(result, alerts + samples.stored)
    server.stop()
    result.cpu_us_per_alert = (after.cpu - before.cpu) / max(alerts + samples.stored, 1) * 1e6
    result.notes.append("pg µs/alert over engine + stored alerts likewise")
    latency = sorted(samples.latency)
    result.webhook_p99_ms = percentile(latency, 99) * 1000
    result.webhook_errors = sum(n for status, n in samples.statuses.items() if status != 200)
    result.stored = samples.stored
    result.max_rss_mb = max(s.rss_mb for s in sampler.samples)
    if after.processed >= count + samples.stored:
        result.notes.append("the engine ran out of backlog during the window: a lower bound")
    result.notes.append(
        f"CPU per alert counts the server's whole CPU (webhooks too) over engine + stored alerts; "
        f"{samples.stored} alerts stored by webhooks during the window"
    )
    return result


async def phase_storm(db: str, seconds: float, workdir: Path, tag: int) -> Result:
    server = await started_server(db, workdir)
    server.start()
    sampler = Sampler(server, 0.5)
    sampler.start()
    bodies = payloads("storm20", tag)
    load = Load(server)
    started = time.perf_counter()
    samples = await open_loop(server.port, bodies, INTAKE_RATE, seconds)
    storm_end = time.perf_counter()
    caught_up = await sampler.until(samples.stored, within=120)
    await sampler.stop()
    during = [s for s in sampler.samples if started <= s.at <= storm_end]
    lags = sorted(s.lag for s in during if s.lag == s.lag)
    result = Result(db, "storm", "storm20", samples.stored, storm_end - started)
    result.rate = samples.stored / (storm_end - started)
    result.max_rss_mb = max(s.rss_mb for s in sampler.samples)
    result.lag_p99 = percentile(lags, 99)
    result.lag_max = lags[-1] if lags else float("nan")
    result.webhook_p99_ms = percentile(sorted(samples.latency), 99) * 1000
    result.webhook_errors = sum(n for status, n in samples.statuses.items() if status != 200)
    result.stored = samples.stored
    load.finish(result, samples.stored)
    server.stop()
    result.notes.append(
        f"inbox empty {caught_up.at - storm_end:.2f} s after the last webhook "
        f"({int(caught_up.processed)} of {samples.stored} processed); lag sampled every 0.5 s"
    )
    # When the lag was high tells what caused it (the onset, a flush of held updates, ...).
    high = [f"{s.at - started:.1f} s: {s.lag:.2f}" for s in during if s.lag > GOAL_LAG_SECONDS / 2]
    result.notes.append(f"lag over {GOAL_LAG_SECONDS / 2:g} s at: {', '.join(high) or 'never'}")
    return result


async def phase_drain(db: str, count: int, workdir: Path, tag: int) -> Result:
    result = await phase_alone(db, "storm20", count, workdir, tag)
    result.phase = "drain"
    return result


def table(results: list[Result]) -> str:
    lines = [
        "| db | phase | shape | alerts | s | alerts/s | CPU µs/alert | pg µs/alert | max RSS MB | "
        "lag p99 s | webhook p99 ms | errors | other load |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        lines.append(
            f"| {r.db} | {r.phase} | {r.shape} | {r.alerts:,} | {r.seconds:.1f} | "
            f"{r.rate:,.0f} | {r.cpu_us_per_alert:.0f} | {r.postgres_us_per_alert:.0f} | "
            f"{r.max_rss_mb:.0f} | {r.lag_p99:.2f} | {r.webhook_p99_ms:.1f} | "
            f"{r.webhook_errors} | {r.other_load_cores:.2f} |"
        )
    return "\n".join(lines)


def goals(results: list[Result]) -> list[str]:
    out = []
    for r in results:
        if r.phase in ("alone", "intake"):
            met = r.rate >= GOAL_RATE
            out.append(
                f"{'MET ' if met else 'MISS'} {r.db} {r.phase} {r.shape}: {r.rate:,.0f} alerts/s "
                f"(goal ≥ {GOAL_RATE:,.0f}; {1e6 / r.cpu_us_per_alert:,.0f}/s per CPU-second)"
            )
        else:
            met = r.max_rss_mb <= GOAL_RSS_MB
            out.append(
                f"{'MET ' if met else 'MISS'} {r.db} {r.phase}: max RSS {r.max_rss_mb:.0f} MB "
                f"(goal ≤ {GOAL_RSS_MB:.0f})"
            )
        if r.phase == "storm":
            met = r.lag_p99 <= GOAL_LAG_SECONDS
            out.append(
                f"{'MET ' if met else 'MISS'} {r.db} {r.phase}: inbox lag p99 {r.lag_p99:.2f} s "
                f"(goal ≤ {GOAL_LAG_SECONDS:.0f})"
            )
    return out


def machine() -> dict[str, Any]:
    load = Path("/proc/loadavg").read_text().split()[:3]
    return {"cpus": os.cpu_count(), "loadavg": load, "python": sys.version.split()[0]}


async def run(args: argparse.Namespace) -> list[Result]:
    results: list[Result] = []
    tag = int(time.time()) % 0xFFFF
    with tempfile.TemporaryDirectory(prefix="ballast-engine-bench-") as tmp:
        workdir = Path(tmp)
        for db in args.db:
            planned = [
                (phase, shape)
                for shape in ("storm20", "distinct2000")
                for phase in ("alone", "intake")
                if phase in args.phases
            ] + [(phase, "storm20") for phase in ("storm", "drain") if phase in args.phases]
            for phase, shape in planned:
                tag += 2
                if phase == "alone":
                    result = await phase_alone(db, shape, args.drain, workdir, tag)
                elif phase == "intake":
                    result = await phase_intake(
                        db, shape, args.drain, args.intake_seconds, workdir, tag
                    )
                elif phase == "storm":
                    result = await phase_storm(db, args.storm_seconds, workdir, tag)
                else:
                    result = await phase_drain(db, args.backlog, workdir, tag)
                print(table([result]).splitlines()[-1], flush=True)
                results.append(result)
    return results


def with_slack() -> None:
    """Servers started from here on post every incident message to a Slack emulator in a
    child process (Slack's rate limits at real speed), as ``bench/slack.py``'s does: the
    announcer renders each changed incident's message instead of the console's line."""
    from bench.slack import Emulator, post_to

    emulator = Emulator()
    atexit.register(emulator.stop)
    post_to(emulator)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default="sqlite,postgres", type=lambda v: v.split(","))
    parser.add_argument("--drain", type=int, default=100_000, help="backlog per throughput phase")
    parser.add_argument("--intake-seconds", type=float, default=15.0)
    parser.add_argument("--storm-seconds", type=float, default=60.0)
    parser.add_argument("--backlog", type=int, default=1_000_000, help="memory phase's backlog")
    parser.add_argument("--phases", default="alone,intake,storm,drain", type=lambda v: v.split(","))
    parser.add_argument("--quick", action="store_true", help="small sizes, a few minutes")
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--slack",
        action="store_true",
        help="the server posts to a Slack emulator (bench/slack.py's) instead of the console",
    )
    args = parser.parse_args()
    if args.quick:
        args.drain, args.intake_seconds, args.storm_seconds, args.backlog = 20_000, 5, 10, 50_000
    os.sched_setaffinity(0, {CLIENT_CORE})
    atexit.register(kill_spawned)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.slack:
        with_slack()
    before = machine()
    try:
        import uvloop

        results = uvloop.run(run(args))
    except ImportError:
        results = asyncio.run(run(args))
    after = machine()
    print()
    print(table(results))
    print()
    for line in goals(results):
        print(line)
    print(f"\nmachine: {before} at start, load {after['loadavg']} at the end")
    print(f"run: {vars(args)}")
    for r in results:
        for note in r.notes:
            print(f"note {r.db} {r.phase} {r.shape}: {note}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "machine": before,
                    "args": {k: str(v) for k, v in vars(args).items()},
                    "results": [asdict(r) for r in results],
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
