"""Webhook ingest: Ballast against a bare baseline, side by side in one run.

Run ``python bench/ingest.py`` (about 12 minutes), ``--quick`` (under 2 minutes), add
``--json FILE`` for machine-readable results. Goals (issue 3, on the standard 2-core machine):
closed-loop ceiling at least 70% of the bare baseline's, 3,000 alerts/s sustained for 60 s with
no 5xx and p99 at most 25 ms, and webhooks accepted again at most 3 s after a SIGKILL.

Why it is built this way:

- The server under test is the real ``python -m bot serve`` (environment as a user sets it,
  runbooks from ``runbooks/``, its incident engine working on the same database), pinned with
  ``taskset -c 0``; this process, the load generator, pins itself to core 1. The baseline is
  ``bench/baseline_app.py``: Starlette + stdlib ``sqlite3`` / ``asyncpg`` doing the same parse
  and the same upsert into an identical table, on the same uvicorn, also on core 0.
- Load is raw HTTP/1.1 over pooled keep-alive connections from asyncio (uvloop) protocols: a
  few microseconds per request, so one core can schedule far more than 3,000 alerts/s. Each
  phase reports the generator's achieved against scheduled send rate and its dispatch lag, which
  shows it is not the bottleneck.
- Open-loop latency is measured from each request's *scheduled* send time, so a server stall
  also charges the requests that could not be sent during it (no coordinated omission).
- Server CPU time comes from ``/proc/<pid>/stat`` (all threads) before and after each window:
  microseconds of CPU per alert survive noisy neighbours better than throughput does.
- Every alert carries a fingerprint never sent before (unless the phase is the duplicate-heavy
  HA-pair mix), so every alert is stored; payloads are realistic Alertmanager v4 groups.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
WEBHOOK_TOKEN = "bench-webhook-token"
METRICS_TOKEN = "bench-metrics-token"
PG_ADMIN_DSN = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
SERVER_CORE = 0
CLIENT_CORE = 1
CLK_TCK = os.sysconf("SC_CLK_TCK")

# -- payloads ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Group:
    """One Alertmanager group: the labels every alert of a notification shares."""

    labels: dict[str, str]
    summary: str


def groups() -> list[Group]:
    """60 groups: 40 reach a runbook in ``runbooks/`` (20 incidents for each of two), 20 reach
    none (a triage incident per alertname), so the engine does all its kinds of work."""
    out: list[Group] = []
    for k in range(20):
        out.append(
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
        )
        out.append(
            Group(
                {
                    "alertname": "UserCorrectionRateHigh",
                    "service": "support-assistant",
                    "locale": f"l{k:02d}",
                    "env": "prod",
                    "severity": "warning",
                },
                "More than 6% of answered turns were corrected",
            )
        )
        out.append(
            Group(
                {
                    "alertname": f"BenchUnmatched{k}",
                    "service": "bench-batch",
                    "env": "prod",
                    "severity": "warning",
                },
                "An alert no runbook knows (goes to triage)",
            )
        )
    return out


class Payloads:
    """Alertmanager v4 bodies with fresh fingerprints, built from a template per group.

    Filling a template costs a few microseconds, so bodies are made at send time and no phase
    needs hundreds of megabytes of pre-built requests.
    """

    def __init__(self, alerts: int, run_tag: int, host: str) -> None:
        self.alerts = alerts
        self.run_tag = run_tag
        self.counter = 0
        self.groups = groups()
        self.templates = [self._template(g) for g in self.groups]
        self.head = (
            "POST /webhooks/alertmanager HTTP/1.1\r\nHost: {host}\r\n"
            "User-Agent: Alertmanager/0.25.0\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {WEBHOOK_TOKEN}\r\n"
            "Content-Length: {length}\r\n\r\n"
        ).replace("{host}", host)

    def _template(self, group: Group) -> str:
        starts = "2026-11-27T01:09:20.998123456Z"
        group_labels = {k: group.labels[k] for k in ("alertname", "service")}
        alerts = []
        alertname = group.labels["alertname"]
        for i in range(self.alerts):
            labels = {
                **group.labels,
                "instance": f"\x00I{i}\x00",
                "job": "llm-metrics",
                "namespace": "ai-prod",
                "pod": f"\x00I{i}\x00",
            }
            alerts.append(
                {
                    "status": "firing",
                    "labels": labels,
                    "annotations": {
                        "summary": f"{group.summary} on \x00I{i}\x00",
                        "description": "Observed over the last 5 minutes; see the dashboard.",
                        "runbook_url": f"https://runbooks.example.invalid/{alertname}",
                    },
                    "startsAt": starts,
                    "endsAt": "0001-01-01T00:00:00Z",
                    "generatorURL": "http://prometheus:9090/graph?g0.expr=rate%28errors%5B5m%5D%29",
                    "fingerprint": f"\x00F{i}\x00",
                }
            )
        body = {
            "receiver": "ballast",
            "status": "firing",
            "alerts": alerts,
            "groupLabels": group_labels,
            "commonLabels": dict(group.labels),
            "commonAnnotations": {},
            "externalURL": "http://alertmanager:9093",
            "version": "4",
            "groupKey": "{}:" + json.dumps(group_labels, sort_keys=True),
            "truncatedAlerts": 0,
        }
        text = json.dumps(body, separators=(",", ":")).replace("%", "%%")
        for i in range(self.alerts):
            text = text.replace(f"\\u0000I{i}\\u0000", f"%(i{i})s")
            text = text.replace(f"\\u0000F{i}\\u0000", f"%(f{i})s")
        return text

    def next_body(self) -> bytes:
        n = self.counter
        self.counter += 1
        values: dict[str, str] = {}
        base = n * self.alerts
        for i in range(self.alerts):
            serial = base + i
            values[f"f{i}"] = f"{self.run_tag:04x}{serial:012x}"
            values[f"i{i}"] = f"pod-{self.run_tag:x}-{serial}"
        return (self.templates[n % len(self.templates)] % values).encode()

    def request(self, body: bytes) -> bytes:
        return self.head.replace("{length}", str(len(body))).encode() + body


# -- HTTP client ---------------------------------------------------------------------------


class HttpConnection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection, one request at a time; just enough parsing."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buffer[:end]).lower()
        at = head.find(b"content-length:")
        length = int(head[at + 15 : head.find(b"\r\n", at) if b"\r\n" in head[at:] else None])
        if len(self.buffer) < end + 4 + length:
            return
        status = int(head[9:12])
        body = bytes(self.buffer[end + 4 : end + 4 + length])
        del self.buffer[: end + 4 + length]
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result((status, body))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("connection closed"))

    def request(self, data: bytes) -> asyncio.Future[tuple[int, bytes]]:
        self.waiter = asyncio.get_running_loop().create_future()
        if self.closed or self.transport is None or self.transport.is_closing():
            self.waiter.set_exception(ConnectionError("connection closed"))
        else:
            self.transport.write(data)
        return self.waiter

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def connect(port: int) -> HttpConnection:
    loop = asyncio.get_running_loop()
    _, protocol = await loop.create_connection(HttpConnection, "127.0.0.1", port)
    return protocol


# -- load ----------------------------------------------------------------------------------


@dataclass
class Samples:
    """What the generator saw: per request, seconds from schedule (or send) to answer."""

    latency: list[float] = field(default_factory=list)
    # Open loop: worst latency per second of the schedule, to see when a stall happened.
    worst_by_second: dict[int, float] = field(default_factory=dict)
    dispatch_lag: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    stored: int = 0
    duplicates: int = 0
    first_send: float = 0.0
    last_send: float = 0.0
    last_answer: float = 0.0
    sent: int = 0


async def _exchange(
    port: int, conn: HttpConnection, payloads: Payloads, samples: Samples
) -> tuple[int, HttpConnection]:
    """Send one fresh notification; a dropped connection counts as status 0 and is replaced."""
    body = payloads.next_body()
    try:
        status, answer = await conn.request(payloads.request(body))
    except ConnectionError:
        status, answer = 0, b""
    if status == 200:
        receipt = json.loads(answer)
        samples.stored += receipt["stored"]
        samples.duplicates += receipt["duplicates"]
    if conn.closed:
        with contextlib.suppress(OSError):
            conn = await connect(port)
    return status, conn


async def closed_loop(port: int, payloads: Payloads, connections: int, seconds: float) -> Samples:
    """N connections, each sending the next notification as soon as the last is answered."""
    samples = Samples()
    conns = [await connect(port) for _ in range(connections)]
    start = time.perf_counter()
    end = start + seconds
    samples.first_send = start

    async def worker(conn: HttpConnection) -> None:
        while (sent := time.perf_counter()) < end:
            samples.sent += 1
            status, conn = await _exchange(port, conn, payloads, samples)
            now = time.perf_counter()
            samples.latency.append(now - sent)
            samples.statuses[status] += 1
            samples.last_answer = now
        conn.close()

    await asyncio.gather(*(worker(c) for c in conns))
    samples.last_send = end
    return samples


async def open_loop(
    port: int,
    payloads: Payloads,
    alerts_per_second: float,
    seconds: float,
    pool: int = 64,
    repeat_each: int = 1,
) -> Samples:
    """Requests at fixed scheduled times, whatever the server does; latency from the schedule.

    ``repeat_each=2`` sends every notification twice back to back, as an Alertmanager HA pair
    does (half the alerts are then duplicates).
    """
    samples = Samples()
    loop = asyncio.get_running_loop()
    idle: asyncio.Queue[HttpConnection] = asyncio.Queue()
    for _ in range(pool):
        idle.put_nowait(await connect(port))
    per_second = alerts_per_second / payloads.alerts
    total = max(1, round(per_second * seconds))
    pending: set[asyncio.Task[None]] = set()
    repeat: list[bytes] = []

    async def one(scheduled: float) -> None:
        samples.dispatch_lag.append(time.perf_counter() - scheduled)
        if repeat_each > 1 and repeat:
            body = repeat.pop()
        else:
            body = payloads.next_body()
            repeat.extend([body] * (repeat_each - 1))
        conn = await idle.get()
        if conn.closed:  # the server went away (the restart test): try a new one
            with contextlib.suppress(OSError):
                conn = await connect(port)
        samples.sent += 1
        samples.last_send = time.perf_counter()
        try:
            status, answer = await conn.request(payloads.request(body))
        except ConnectionError:
            status, answer = 0, b""
        done = time.perf_counter()
        if status == 200:
            receipt = json.loads(answer)
            samples.stored += receipt["stored"]
            samples.duplicates += receipt["duplicates"]
        samples.latency.append(done - scheduled)
        second = int(scheduled - start)
        samples.worst_by_second[second] = max(
            samples.worst_by_second.get(second, 0.0), done - scheduled
        )
        samples.statuses[status] += 1
        samples.last_answer = done
        idle.put_nowait(conn)

    start = time.perf_counter() + 0.05
    samples.first_send = start
    for i in range(total):
        scheduled = start + i / per_second
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = loop.create_task(one(scheduled))
        pending.add(task)
        task.add_done_callback(pending.discard)
    if pending:
        _, late = await asyncio.wait(pending, timeout=60)
        for task in late:
            task.cancel()
        if late:
            samples.statuses[-1] += len(late)  # no answer within 60 s of the last send
    while not idle.empty():
        idle.get_nowait().close()
    return samples


# -- servers -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def process_cpu_seconds(pid: int) -> float:
    """user + system CPU of a process and all its threads, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def core_busy_seconds(cores: tuple[int, ...] = (SERVER_CORE, CLIENT_CORE)) -> float:
    """Busy (non-idle) time of the benchmark's cores, everyone's, from /proc/stat."""
    busy = 0
    for line in Path("/proc/stat").read_text().splitlines():
        name, *values = line.split()
        if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cores:
            ticks = [int(v) for v in values[:8]]
            busy += sum(ticks) - ticks[3] - ticks[4]  # all but idle and iowait
    return busy / CLK_TCK


def postgres_cpu_seconds() -> float:
    """CPU of every ``postgres`` process (other users' included: approximate)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            if (entry / "comm").read_text().strip() == "postgres":
                total += process_cpu_seconds(int(entry.name))
    return total


@dataclass
class Target:
    """What to start: Ballast or the baseline, on SQLite or PostgreSQL."""

    app: str  # "ballast" | "baseline"
    db: str  # "sqlite" | "postgres"
    variant: str = ""  # "" or "normal" (SQLite synchronous=NORMAL)

    @property
    def label(self) -> str:
        return f"{self.app}{'/' + self.variant if self.variant else ''}"


SPAWNED: list[subprocess.Popen[bytes]] = []


def kill_spawned() -> None:
    """Leave no server behind, however this process ends (atexit and SIGTERM)."""
    for process in SPAWNED:
        if process.poll() is None:
            process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(5)


class Server:
    """A server process pinned to core 0, its database made fresh for it."""

    def __init__(self, target: Target, workdir: Path, port: int | None = None) -> None:
        self.target = target
        self.workdir = workdir
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.database = self._database_url()
        self.log = workdir / f"{target.app}-{target.db}.log"

    def _database_url(self) -> str:
        if self.target.db == "sqlite":
            name = f"{self.target.app}-{self.target.variant or 'full'}-{self.port}.db"
            return f"sqlite:///{self.workdir / name}"
        base = PG_ADMIN_DSN.rsplit("/", 1)[0]
        return f"{base}/bench_{self.target.app}"

    def command(self) -> list[str]:
        pin = ["taskset", "-c", str(SERVER_CORE)]
        if self.target.app == "baseline":
            extra = ["--synchronous", "NORMAL"] if self.target.variant == "normal" else []
            script = str(REPO / "bench" / "baseline_app.py")
            return [
                *pin,
                sys.executable,
                script,
                "--database",
                self.database,
                "--port",
                str(self.port),
                *extra,
            ]
        if self.target.variant == "normal":
            script = str(REPO / "bench" / "serve_variant.py")
            return [*pin, sys.executable, script, "--port", str(self.port)]
        return [*pin, sys.executable, "-m", "bot", "serve", "--port", str(self.port)]

    def spawn(self) -> float:
        """Start the process; returns the time it was started (perf_counter)."""
        env = {
            **os.environ,
            "BALLAST_DATABASE_URL": self.database,
            "BALLAST_RUNBOOKS": str(REPO / "runbooks"),
            # This checkout's bot/, not an installed one (the server runs in the workdir).
            "PYTHONPATH": os.pathsep.join(
                p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p
            ),
            # Closed by default, as in production: Alertmanager's bearer token, a scrape token.
            "BALLAST_WEBHOOK_TOKEN": WEBHOOK_TOKEN,
            "BALLAST_METRICS_TOKEN": METRICS_TOKEN,
        }
        log = self.log.open("ab")
        started = time.perf_counter()
        self.process = subprocess.Popen(
            self.command(), cwd=self.workdir, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        SPAWNED.append(self.process)
        log.close()
        return started

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.target.label} exited:\n{self.log.read_text()[-3000:]}")
            url = f"http://127.0.0.1:{self.port}/readyz"
            with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1):
                return
            time.sleep(0.05)
        raise RuntimeError(f"{self.target.label} not ready after {timeout}s")

    def start(self) -> None:
        self.spawn()
        self.wait_ready()

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def cpu(self) -> float:
        return process_cpu_seconds(self.pid)

    def metric(self, name: str) -> float | None:
        """One unlabelled sample from Ballast's /metrics (None for the baseline)."""
        if self.target.app != "ballast":
            return None
        scrape = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/metrics",
            headers={"Authorization": f"Bearer {METRICS_TOKEN}"},
        )
        with urllib.request.urlopen(scrape, timeout=30) as r:
            for line in r.read().decode().splitlines():
                if line.startswith(name + " "):
                    return float(line.split()[1])
        return None

    def wal_bytes(self) -> int | None:
        if self.target.db != "sqlite":
            return None
        wal = Path(self.database.split(":///", 1)[1] + "-wal")
        return wal.stat().st_size if wal.exists() else 0

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        """SIGTERM, and SIGKILL after 3 s: a graceful stop would wait for the engine's pass."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(3)
            except subprocess.TimeoutExpired:
                self.kill()


async def reset_postgres(name: str) -> None:
    """A fresh, empty database for one server (never the shared ``test`` database)."""
    import asyncpg  # type: ignore[import-untyped]

    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await conn.execute(f"CREATE DATABASE {name}")
    finally:
        await conn.close()


async def fresh_database(db: str, name: str, workdir: Path) -> str:
    """The URL of a fresh, empty database of kind ``db``: a SQLite file ``<name>.db`` in
    ``workdir``, or the PostgreSQL database ``name`` made anew."""
    if db == "sqlite":
        return f"sqlite:///{workdir / name}.db"
    await reset_postgres(name)
    return f"{PG_ADMIN_DSN.rsplit('/', 1)[0]}/{name}"


# -- phases --------------------------------------------------------------------------------


def percentile(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(p / 100 * len(sorted_values)) - 1))
    return sorted_values[index]


@dataclass
class Phase:
    """One measured window and everything reported about it."""

    db: str
    app: str
    alerts_per_request: int
    kind: str  # "ceiling", "open" or "open-ha" (each notification sent twice)
    rate: float | None  # scheduled alerts/s (open loop)
    seconds: float
    requests: int = 0
    ok: int = 0
    non_2xx: dict[str, int] = field(default_factory=dict)
    five_xx: int = 0
    alerts_per_s: float = 0.0
    stored: int = 0
    duplicates: int = 0
    p50_ms: float = 0.0
    p90_ms: float = 0.0
    p99_ms: float = 0.0
    p999_ms: float = 0.0
    max_ms: float = 0.0
    scheduled_send_rate: float | None = None
    achieved_send_rate: float = 0.0
    dispatch_lag_p99_ms: float | None = None
    server_cpu_us_per_alert: float = 0.0
    server_cpu_util: float = 0.0
    postgres_cpu_us_per_alert: float | None = None
    client_cpu_util: float = 0.0
    # Busy time of cores 0 and 1 not spent by the server, this process or PostgreSQL, in cores:
    # other work on the machine (other benchmarks, test suites). Numbers under noise vary.
    other_load: float = 0.0
    inbox_pending: float | None = None
    inbox_lag_s: float | None = None
    wal_bytes: int | None = None
    # Open loop: the second of the schedule with the slowest answer, and how slow it was.
    worst_second: int | None = None
    worst_second_ms: float | None = None
    seconds_over_25ms: int | None = None


async def measure(
    server: Server,
    payloads: Payloads,
    kind: str,
    seconds: float,
    rate: float | None = None,
    connections: int = 32,
) -> Phase:
    """Run one window against ``server`` and account for it."""
    target = server.target
    phase = Phase(target.db, target.label, payloads.alerts, kind, rate, seconds)
    cpu0, pg0, me0 = server.cpu(), postgres_cpu_seconds(), time.process_time()
    busy0 = core_busy_seconds()
    wall0 = time.perf_counter()
    if kind == "ceiling":
        samples = await closed_loop(server.port, payloads, connections, seconds)
    else:
        assert rate is not None
        samples = await open_loop(
            server.port, payloads, rate, seconds, repeat_each=2 if kind == "open-ha" else 1
        )
    wall = time.perf_counter() - wall0
    cpu1, pg1, me1 = server.cpu(), postgres_cpu_seconds(), time.process_time()
    busy1 = core_busy_seconds()
    elapsed = max(samples.last_answer - samples.first_send, 1e-9)
    latencies = sorted(samples.latency)
    ok = samples.statuses.get(200, 0)
    phase.requests = sum(samples.statuses.values())
    phase.ok = ok
    phase.non_2xx = {str(k): v for k, v in sorted(samples.statuses.items()) if not 200 <= k < 300}
    phase.five_xx = sum(v for k, v in samples.statuses.items() if 500 <= k < 600)
    alerts_ok = ok * payloads.alerts
    phase.alerts_per_s = alerts_ok / elapsed
    phase.stored, phase.duplicates = samples.stored, samples.duplicates
    phase.p50_ms = percentile(latencies, 50) * 1e3
    phase.p90_ms = percentile(latencies, 90) * 1e3
    phase.p99_ms = percentile(latencies, 99) * 1e3
    phase.p999_ms = percentile(latencies, 99.9) * 1e3
    phase.max_ms = (latencies[-1] if latencies else float("nan")) * 1e3
    send_window = max(samples.last_send - samples.first_send, 1e-9)
    if rate is not None:
        phase.scheduled_send_rate = rate / payloads.alerts
        phase.dispatch_lag_p99_ms = percentile(sorted(samples.dispatch_lag), 99) * 1e3
    phase.achieved_send_rate = max(samples.sent - 1, 0) / send_window
    phase.server_cpu_us_per_alert = (cpu1 - cpu0) / max(alerts_ok, 1) * 1e6
    phase.server_cpu_util = (cpu1 - cpu0) / wall
    if target.db == "postgres":
        phase.postgres_cpu_us_per_alert = (pg1 - pg0) / max(alerts_ok, 1) * 1e6
    phase.client_cpu_util = (me1 - me0) / wall
    ours = (cpu1 - cpu0) + (me1 - me0) + (pg1 - pg0)
    phase.other_load = max(0.0, (busy1 - busy0) - ours) / wall
    if samples.worst_by_second:
        second, worst = max(samples.worst_by_second.items(), key=lambda item: item[1])
        phase.worst_second, phase.worst_second_ms = second, worst * 1e3
        phase.seconds_over_25ms = sum(1 for w in samples.worst_by_second.values() if w > 0.025)
    phase.inbox_pending = server.metric("ballast_inbox_pending")
    phase.inbox_lag_s = server.metric("ballast_inbox_lag_seconds")
    phase.wal_bytes = server.wal_bytes()
    return phase


@dataclass
class Plan:
    sizes: tuple[int, ...]
    dbs: tuple[str, ...]
    warmup: float
    ceiling: float
    ceiling_runs: int  # ceilings are noisy (PostgreSQL shares the cores): the median is reported
    rates: tuple[tuple[float, float, float], ...]  # (alerts/s, seconds ballast, seconds base)
    ha_seconds: float
    sync_seconds: float
    restarts: int


FULL = Plan(
    sizes=(5, 50),
    dbs=("sqlite", "postgres"),
    warmup=2,
    ceiling=10,
    ceiling_runs=3,
    rates=((1000, 10, 10), (3000, 60, 30)),
    ha_seconds=10,
    sync_seconds=20,
    restarts=3,
)
QUICK = Plan(
    sizes=(5, 50),
    dbs=("sqlite", "postgres"),
    warmup=0.5,
    ceiling=2,
    ceiling_runs=1,
    rates=((3000, 4, 4),),
    ha_seconds=0,
    sync_seconds=0,
    restarts=1,
)


class Run:
    """The whole benchmark: every (database, app, payload size), then restarts."""

    def __init__(self, plan: Plan, workdir: Path, log: Callable[[str], None]) -> None:
        self.plan = plan
        self.workdir = workdir
        self.log = log
        self.phases: list[Phase] = []
        self.restarts: list[dict[str, Any]] = []
        self.tag = int(time.time()) & 0xFFFF

    def payloads(self, server: Server, alerts: int) -> Payloads:
        self.tag = (self.tag + 1) & 0xFFFF
        return Payloads(alerts, self.tag, f"127.0.0.1:{server.port}")

    async def server(self, target: Target) -> Server:
        if target.db == "postgres":
            await reset_postgres(f"bench_{target.app}")
        server = Server(target, self.workdir)
        server.start()
        return server

    def record(self, phase: Phase) -> None:
        self.phases.append(phase)
        self.log(
            f"  {phase.db:8} {phase.app:15} {phase.alerts_per_request:>2}/req {phase.kind:7} "
            f"{'' if phase.rate is None else int(phase.rate):>5} "
            f"{phase.alerts_per_s:9,.0f} alerts/s  p50 {phase.p50_ms:6.2f}  p99 {phase.p99_ms:7.2f}"
            f"  p99.9 {phase.p999_ms:7.2f} ms  cpu {phase.server_cpu_us_per_alert:6.0f} µs/alert"
            f"  non-2xx {phase.non_2xx or 0}"
            + (f"  pending {phase.inbox_pending:.0f}" if phase.inbox_pending is not None else "")
        )

    async def app_on_db(self, target: Target) -> None:
        server = await self.server(target)
        plan = self.plan
        try:
            for size in plan.sizes:
                await measure(server, self.payloads(server, size), "ceiling", plan.warmup)
                for rate, ballast_s, base_s in plan.rates:
                    seconds = ballast_s if target.app == "ballast" else base_s
                    payloads = self.payloads(server, size)
                    self.record(await measure(server, payloads, "open", seconds, rate))
                if plan.ha_seconds and size == plan.sizes[0]:
                    payloads = self.payloads(server, size)
                    self.record(await measure(server, payloads, "open-ha", plan.ha_seconds, 3000))
                for _ in range(plan.ceiling_runs):
                    payloads = self.payloads(server, size)
                    self.record(await measure(server, payloads, "ceiling", plan.ceiling))
        finally:
            server.stop()

    async def synchronous_normal(self) -> None:
        """SQLite FULL against NORMAL, 5-alert notifications (FULL is the shipped setting)."""
        for app in ("baseline", "ballast"):
            server = await self.server(Target(app, "sqlite", "normal"))
            try:
                await measure(server, self.payloads(server, 5), "ceiling", self.plan.warmup)
                payloads = self.payloads(server, 5)
                phase = await measure(server, payloads, "open", self.plan.sync_seconds, 3000)
                self.record(phase)
                payloads = self.payloads(server, 5)
                self.record(await measure(server, payloads, "ceiling", self.plan.ceiling))
            finally:
                server.stop()

    async def restart(self, db: str) -> None:
        """SIGKILL ``ballast serve`` under load; time until a webhook gets a 2xx again."""
        server = await self.server(Target("ballast", db))
        try:
            for attempt in range(self.plan.restarts):
                load = asyncio.create_task(
                    open_loop(server.port, self.payloads(server, 5), 1500, 4.0)
                )
                await asyncio.sleep(2.5)
                server.kill()
                killed = time.perf_counter()
                spawned = server.spawn()
                accepted = await first_accepted(server.port, self.payloads(server, 5), 30)
                samples = await load
                pending = server.metric("ballast_inbox_pending")
                result = {
                    "db": db,
                    "attempt": attempt + 1,
                    "seconds_from_kill": accepted - killed,
                    "seconds_from_spawn": accepted - spawned,
                    "acknowledged_before_kill": samples.statuses.get(200, 0),
                    "inbox_pending_after": pending,
                }
                self.restarts.append(result)
                self.log(
                    f"  restart {db:8} #{attempt + 1}: webhooks accepted "
                    f"{result['seconds_from_kill']:.2f} s after SIGKILL "
                    f"({result['seconds_from_spawn']:.2f} s after spawn), {pending} pending"
                )
                await asyncio.sleep(1.0)
        finally:
            server.stop()

    async def run(self) -> None:
        for db in self.plan.dbs:
            for app in ("baseline", "ballast"):
                self.log(f"{app} on {db}")
                await self.app_on_db(Target(app, db))
        if self.plan.sync_seconds:
            self.log("SQLite synchronous=NORMAL (comparison only)")
            await self.synchronous_normal()
        self.log("restart after SIGKILL")
        for db in self.plan.dbs:
            await self.restart(db)


async def first_accepted(port: int, payloads: Payloads, within: float) -> float:
    """Poll with a real webhook on a new connection every 10 ms; when did one get a 2xx?"""
    deadline = time.perf_counter() + within
    while time.perf_counter() < deadline:
        conn: HttpConnection | None = None
        try:
            conn = await asyncio.wait_for(connect(port), 0.5)
            status, _ = await asyncio.wait_for(
                conn.request(payloads.request(payloads.next_body())), 2.0
            )
            if 200 <= status < 300:
                return time.perf_counter()
        except (OSError, TimeoutError):
            pass
        finally:
            if conn is not None:
                conn.close()
        await asyncio.sleep(0.01)
    raise RuntimeError(f"no webhook accepted within {within}s of the restart")


# -- report --------------------------------------------------------------------------------


def table(headers: list[str], rows: list[list[str]]) -> str:
    """A Markdown table (it reads fine in a terminal too)."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |"
    rule = "| " + " | ".join("-" * w for w in widths) + " |"
    body = [
        "| " + " | ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in rows
    ]
    return "\n".join([line, rule, *body])


def _ms(value: float) -> str:
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def median_ceilings(run: Run) -> dict[tuple[str, str, int], tuple[Phase, list[float]]]:
    """Per (db, app, size): the ceiling run with the median alerts/s, and every run's alerts/s."""
    runs: dict[tuple[str, str, int], list[Phase]] = {}
    for p in run.phases:
        if p.kind == "ceiling":
            runs.setdefault((p.db, p.app, p.alerts_per_request), []).append(p)
    out = {}
    for key, phases in runs.items():
        ordered = sorted(phases, key=lambda p: p.alerts_per_s)
        out[key] = (ordered[(len(ordered) - 1) // 2], [p.alerts_per_s for p in phases])
    return out


def report(run: Run) -> str:
    out: list[str] = []
    ceilings = median_ceilings(run)
    rows = []
    for (db, app, size), (p, every) in ceilings.items():
        ref = ceilings.get((db, "baseline", size))
        ratio = f"{p.alerts_per_s / ref[0].alerts_per_s:.0%}" if ref and app != "baseline" else ""
        rows.append(
            [
                p.db,
                p.app,
                str(p.alerts_per_request),
                f"{p.alerts_per_s:,.0f}",
                " / ".join(f"{a:,.0f}" for a in every),
                ratio,
                f"{p.server_cpu_us_per_alert:.0f}",
                "" if p.postgres_cpu_us_per_alert is None else f"{p.postgres_cpu_us_per_alert:.0f}",
                f"{p.server_cpu_util:.0%}",
                _ms(p.p50_ms),
                _ms(p.p99_ms),
                str(p.five_xx),
                "" if p.inbox_pending is None else f"{p.inbox_pending:,.0f}",
                f"{p.other_load:.2f}",
            ]
        )
    out.append("Closed-loop ceiling (32 connections, each sends as soon as answered)\n")
    out.append(
        table(
            [
                "db",
                "app",
                "alerts/req",
                "alerts/s (median)",
                "every run",
                "vs base",
                "cpu µs/alert",
                "pg µs/alert",
                "server cpu",
                "p50 ms",
                "p99 ms",
                "5xx",
                "inbox pending",
                "other load",
            ],
            rows,
        )
    )
    rows = []
    for p in run.phases:
        if p.kind == "ceiling":
            continue
        rows.append(
            [
                p.db,
                p.app,
                str(p.alerts_per_request),
                p.kind,
                f"{p.rate:,.0f}" if p.rate else "",
                f"{p.seconds:.0f}",
                f"{p.alerts_per_s:,.0f}",
                _ms(p.p50_ms),
                _ms(p.p99_ms),
                _ms(p.p999_ms),
                _ms(p.max_ms),
                str(sum(p.non_2xx.values())),
                str(p.five_xx),
                f"{p.server_cpu_us_per_alert:.0f}",
                f"{p.achieved_send_rate:,.0f}/{p.scheduled_send_rate or 0:,.0f}",
                _ms(p.dispatch_lag_p99_ms or 0.0),
                f"{p.client_cpu_util:.0%}",
                "" if p.inbox_pending is None else f"{p.inbox_pending:,.0f}",
                "" if p.wal_bytes is None else f"{p.wal_bytes / 2**20:.1f}",
                f"{p.other_load:.2f}",
            ]
        )
    out.append("\nOpen loop (latency from the scheduled send time)\n")
    out.append(
        table(
            [
                "db",
                "app",
                "alerts/req",
                "kind",
                "alerts/s sched",
                "s",
                "alerts/s done",
                "p50 ms",
                "p99 ms",
                "p99.9 ms",
                "max ms",
                "non-2xx",
                "5xx",
                "cpu µs/alert",
                "req/s sent/sched",
                "gen lag p99 ms",
                "gen cpu",
                "inbox pending",
                "wal MiB",
                "other load",
            ],
            rows,
        )
    )
    if run.restarts:
        rows = [
            [
                r["db"],
                str(r["attempt"]),
                f"{r['seconds_from_kill']:.2f}",
                f"{r['seconds_from_spawn']:.2f}",
                str(r["acknowledged_before_kill"]),
                "" if r["inbox_pending_after"] is None else f"{r['inbox_pending_after']:,.0f}",
            ]
            for r in run.restarts
        ]
        out.append("\nBack to accepting webhooks after SIGKILL (under 1,500 alerts/s)\n")
        out.append(
            table(
                [
                    "db",
                    "attempt",
                    "s from kill",
                    "s from spawn",
                    "2xx before kill",
                    "inbox pending",
                ],
                rows,
            )
        )
    out.append("\nGoals\n")
    out.extend(f"- {line}" for line in goals(run))
    return "\n".join(out)


def goals(run: Run) -> Iterator[str]:
    ceilings = median_ceilings(run)
    for (db, app, size), (p, _) in sorted(ceilings.items()):
        ref = ceilings.get((db, "baseline", size))
        if app != "ballast" or ref is None:
            continue
        ratio = p.alerts_per_s / ref[0].alerts_per_s
        verdict = "met" if ratio >= 0.7 else "MISSED"
        yield f"ceiling {db} {size}/req: {ratio:.0%} of baseline (≥ 70%): {verdict}"
    for p in run.phases:
        if p.app == "ballast" and p.kind == "open" and p.rate == 3000:
            ok = p.five_xx == 0 and p.p99_ms <= 25 and p.alerts_per_s >= 0.97 * 3000
            yield (
                f"3,000 alerts/s {p.db} {p.alerts_per_request}/req for {p.seconds:.0f} s: "
                f"p99 {p.p99_ms:.1f} ms, {p.five_xx} 5xx (p99 ≤ 25 ms, no 5xx): "
                + ("met" if ok else "MISSED")
            )
    for db in run.plan.dbs:
        times = [r["seconds_from_kill"] for r in run.restarts if r["db"] == db]
        if times:
            verdict = "met" if max(times) <= 3 else "MISSED"
            yield (
                f"restart {db}: worst {max(times):.2f} s, median {statistics.median(times):.2f} s "
                f"from SIGKILL to an accepted webhook (≤ 3 s): {verdict}"
            )


def machine() -> dict[str, Any]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    busy, mine = core_busy_seconds(), time.process_time()
    time.sleep(2)
    other = (core_busy_seconds() - busy) - (time.process_time() - mine)
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": sys.version.split()[0],
        "loadavg_before": Path("/proc/loadavg").read_text().split()[:3],
        "other_load_before": max(0.0, other) / 2,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short windows (under 2 minutes)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    parser.add_argument("--db", choices=["sqlite", "postgres"], help="only this database")
    parser.add_argument("--sizes", help="alerts per notification, e.g. 5,50")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs, DBs)")
    parser.add_argument(
        "--nice", type=int, default=0, help="nice value for servers and generator (root: <0)"
    )
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    if args.db:
        plan = replace(plan, dbs=(args.db,))
    if args.sizes:
        plan = replace(plan, sizes=tuple(int(s) for s in args.sizes.split(",")))
    if shutil.which("taskset") is None:
        sys.exit("taskset (util-linux) is needed to pin the server to a core")
    os.sched_setaffinity(0, {CLIENT_CORE})
    if args.nice:
        os.nice(args.nice)  # inherited by the servers this process starts
    atexit.register(kill_spawned)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    workdir = Path(tempfile.mkdtemp(prefix="ballast-bench-", dir="/var/tmp"))
    info = machine()
    started = time.perf_counter()
    run = Run(plan, workdir, lambda line: print(line, flush=True))
    print(
        f"work folder {workdir}; {info['cpu']}, {info['cores']} cores; load average "
        f"{' '.join(info['loadavg_before'])}; other work on cores 0-1 right now: "
        f"{info['other_load_before']:.2f} cores"
    )
    if info["other_load_before"] > 0.3:
        print("warning: the machine is busy with other work; expect noisy numbers")
    try:
        import uvloop

        uvloop.run(run.run())
    finally:
        kill_spawned()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print()
    print(report(run))
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    if args.json:
        info["loadavg_after"] = Path("/proc/loadavg").read_text().split()[:3]
        data = {
            "machine": info,
            "plan": asdict(plan),
            "phases": [asdict(p) for p in run.phases],
            "restarts": run.restarts,
        }
        args.json.write_text(json.dumps(data, indent=2) + "\n")


if __name__ == "__main__":
    main()
