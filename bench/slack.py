"""Slack ack latency: slash commands and button clicks while Ballast ingests 3,000 alerts/s.

Run ``python bench/slack.py`` (under 2 minutes) or ``--quick`` (about 30 s); ``--json FILE``
writes every result and request, ``--profile`` samples the server with py-spy in the busy window
(it perturbs the numbers), ``--keep`` keeps the work folder (server log, database). Goal
(issue 5): p99 at most 100 ms from request to 2xx for ``/ballast`` and button clicks while the
bot ingests 3,000 alerts/s, and no Slack call made for a request before that request's ack.

How it is built:

- The server is the real ``python -m bot serve``, started by ``bench/ingest.py``'s ``Server``
  (pinned to core 0, runbooks from ``runbooks/``, SQLite in a fresh work folder) with
  ``SLACK_BOT_TOKEN``, ``SLACK_SIGNING_SECRET``, ``BALLAST_SLACK_API_URL`` and
  ``BALLAST_SLACK_CHANNEL`` set as a user sets them.
- Slack is ``tests/slack_emulator``'s ``SlackEmulator`` (real HTTP on loopback, Slack's rate
  limits at real speed), run by this script in a child process (``--emulator-child``) with its
  own interpreter lock; it shares core 1 with the load generator and its CPU is reported.
  Bolt's ``respond()`` posts to ``response_url``s the emulator issued, one per request.
- Alert load is ``bench/ingest.py``'s ``open_loop`` with its Alertmanager payloads: 5 alerts per
  notification, fresh fingerprints, 40 groups that runbooks match (40 incidents, so the Slack
  outbox is busy posting and updating at Slack's rate limits) and 20 that none does.
- Slack requests are built with ``RequestSigner`` and the emulator's payload builders exactly as
  Slack sends them (form-encoded slash commands; ``block_actions`` for a click on a button of an
  incident message as the emulator holds it, refreshed every 2 s) and sent at a fixed rate on
  their own keep-alive connections (raw HTTP/1.1, ``bench/ingest.py``'s parser). Per 40
  requests: 10 ``/ballast list``, 9 ``/ballast help``, 20 clicks on Run/Approve by a user who
  owns nothing (refused and recorded; nothing changes) and 1 click by the runbook's owner on a
  ToolCallFailureRate incident (the mitigation runs, the message is updated).
- Windows: idle (Slack requests only), busy (the same under 3,000 alerts/s), drain (after the
  alerts stop, while the incident engine works off its backlog).
- Latency is open loop, from each request's scheduled send time (no coordinated omission) to
  the first byte of its 2xx, as this process read it and as the kernel received it
  (``SO_TIMESTAMPNS``: on loopback, when the server wrote it, whatever this busy core did);
  "service" is from the actual send to the server's write, without the generator's lag.
- Where the server's time went: a thread samples ``/proc/<pid>/task/*/schedstat`` and
  ``/proc/stat`` every 10 ms, so a stall shows whether the event loop was running its own work,
  waiting for the core (other processes) or asleep.
- "Before the ack": every request has its own ``response_url``; the emulator timestamps every
  post to it and every Web API call on the same clock. A post is early when the emulator had it
  before the kernel had the request's answer. A Web API call is attributable to a waiting
  request when only a request causes its method (``auth.test``, ``users.info``,
  ``usergroups.users.list``, ``chat.postEphemeral``, ``views.*``) or it is a ``chat.*`` call on
  the message an owner just clicked.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
# Run as a script, this folder would shadow the installed ``slack`` package: import from the repo.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != REPO / "bench"]
sys.path.insert(0, str(REPO))

from bench.ingest import (  # noqa: E402
    CLIENT_CORE,
    CLK_TCK,
    HttpConnection,
    Payloads,
    Samples,
    Server,
    Target,
    machine,
    open_loop,
    percentile,
    process_cpu_seconds,
    table,
)
from tests.slack_emulator import (  # noqa: E402
    RequestSigner,
    SignedRequest,
    SlackChannel,
    SlackUser,
    click,
    slash_command_form,
)

SECRET = "bench-signing-secret-0123456789abcdef"
TOKEN = "xoxb-0000000000-0000000000000-benchbenchbenchbenchbench"
INCIDENTS = SlackChannel("C0INCIDENT", "incidents")
CHANNELS = (
    INCIDENTS,
    SlackChannel("C0SUPPORTOPS", "support-ops"),
    SlackChannel("C0INCSUPPORT", "inc-support-assistant"),
)
OWNER = SlackUser("U024BE7LH", "tool-owner")  # owner of support-assistant/tool-failure-spike
STRANGER = SlackUser("U0STRANGER", "stranger")  # owns no runbook
REQUEST_ONLY = ("auth.test", "users.info", "usergroups.users.list", "chat.postEphemeral")
TIMEOUT = 10.0  # seconds without an answer before a request counts as lost
STALL = 0.05  # an ack slower than this, from send to the server's write, is looked into


# -- the emulator, in its own process --------------------------------------------------------


def emulator_child() -> None:
    """``--emulator-child``: serve a SlackEmulator; answer JSON-line commands on stdin."""
    from tests.slack_emulator import SlackEmulator

    emulator = SlackEmulator(users=(OWNER, STRANGER), channels=CHANNELS).start()
    print(json.dumps({"base_url": emulator.base_url, "pid": os.getpid()}), flush=True)
    for line in sys.stdin:
        command = json.loads(line)
        op = command["op"]
        answer: Any = None
        if op == "urls":
            answer = [emulator.response_url(command["kind"]) for _ in range(command["n"])]
        elif op == "messages":
            answer = [
                {k: v for k, v in m.items() if k != "replies"}
                for m in emulator.messages(INCIDENTS.id)
            ]
        elif op == "log":
            answer = {
                "calls": [
                    {
                        "method": c.method,
                        "at": c.at,
                        "status": c.status,
                        "ok": c.ok,
                        "channel": c.channel,
                        "ts": c.args.get("ts"),
                        "thread_ts": c.args.get("thread_ts"),
                    }
                    for c in emulator.calls()
                ],
                "posts": [
                    {"url": p.url, "at": p.at, "status": p.status, "text": str(p.body.get("text"))}
                    for p in emulator.response_posts()
                ],
                "unretried_429": len(emulator.unretried_rate_limits(match="target")),
            }
        elif op == "stop":
            break
        print(json.dumps(answer), flush=True)
    emulator.stop()


def post_to(emulator: Emulator) -> None:
    """Servers started from here on (they inherit this environment) post to ``emulator``, with
    the variables a user sets for Slack."""
    for name in ("SLACK_APP_TOKEN", "BALLAST_SLACK_APP_TOKEN", "BALLAST_CONFIG"):
        os.environ.pop(name, None)
    os.environ.update(
        {
            "SLACK_BOT_TOKEN": TOKEN,
            "SLACK_SIGNING_SECRET": SECRET,
            "BALLAST_SLACK_API_URL": emulator.base_url,
            "BALLAST_SLACK_CHANNEL": INCIDENTS.id,
        }
    )


class Emulator:
    """The parent's handle on the emulator process (calls are blocking; one at a time)."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--emulator-child"],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._lock = threading.Lock()
        hello = json.loads(self._read())
        self.base_url: str = hello["base_url"]

    def _read(self) -> str:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("the Slack emulator process exited")
        return line

    def ask(self, op: str, **args: Any) -> Any:
        assert self.process.stdin is not None
        with self._lock:
            self.process.stdin.write(json.dumps({"op": op, **args}) + "\n")
            self.process.stdin.flush()
            return json.loads(self._read())

    def cpu(self) -> float:
        return process_cpu_seconds(self.process.pid)

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(OSError, ValueError):
                assert self.process.stdin is not None
                self.process.stdin.write(json.dumps({"op": "stop"}) + "\n")
                self.process.stdin.close()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()


# -- Slack requests ----------------------------------------------------------------------------


SO_TIMESTAMPNS = 35  # Linux; Python's socket module does not name it
SCM_TIMESTAMPNS = SO_TIMESTAMPNS


class KernelStampedConnection:
    """A keep-alive connection whose answers carry the kernel's receive time.

    Parsing and request bookkeeping are ``bench/ingest.py``'s ``HttpConnection``; this class is
    its transport. Reading with ``recvmsg`` and ``SO_TIMESTAMPNS`` gives, per answer, the
    wall-clock time the kernel queued its first bytes. On loopback that is within microseconds
    of the server's write, however late this busy process gets to read it; the emulator's
    timestamps are on the same clock, so the two can be ordered.
    """

    def __init__(self, sock: socket.socket, loop: asyncio.AbstractEventLoop) -> None:
        self.sock = sock
        self.loop = loop
        self.first_byte = 0.0  # perf_counter, when this process read the answer's first bytes
        self.first_byte_wall = 0.0
        self.kernel_wall = 0.0  # when the kernel received them (SO_TIMESTAMPNS)
        self._unsent = b""
        self.parser = HttpConnection()
        self.parser.connection_made(self)  # type: ignore[arg-type]  # a transport for it
        loop.add_reader(sock.fileno(), self._readable)

    @classmethod
    async def open(cls, port: int) -> KernelStampedConnection:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        return cls(sock, asyncio.get_running_loop())

    # the transport side, as HttpConnection uses it
    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.sock if name == "socket" else default

    def is_closing(self) -> bool:
        return self.sock.fileno() < 0

    def write(self, data: bytes) -> None:
        self._unsent += data
        self._writable()

    def _writable(self) -> None:
        try:
            sent = self.sock.send(self._unsent)
        except BlockingIOError:
            sent = 0
        except OSError:
            self.close()
            return
        self._unsent = self._unsent[sent:]
        if self._unsent:
            self.loop.add_writer(self.sock.fileno(), self._writable)
        else:
            self.loop.remove_writer(self.sock.fileno())

    def _readable(self) -> None:
        try:
            data, ancillary, _, _ = self.sock.recvmsg(1 << 18, socket.CMSG_SPACE(16))
        except BlockingIOError:
            return
        except OSError:
            data, ancillary = b"", []
        if not data:
            self.close()
            return
        if not self.parser.buffer:  # the first bytes of an answer
            self.first_byte, self.first_byte_wall = time.perf_counter(), time.time()
            for level, kind, payload in ancillary:
                if level == socket.SOL_SOCKET and kind == SCM_TIMESTAMPNS:
                    seconds, nanos = struct.unpack("qq", payload[:16])
                    self.kernel_wall = seconds + nanos / 1e9
        self.parser.data_received(data)

    # the client side
    def request(self, data: bytes) -> asyncio.Future[tuple[int, bytes]]:
        self.kernel_wall = 0.0
        return self.parser.request(data)

    @property
    def closed(self) -> bool:
        return self.parser.closed

    def close(self) -> None:
        if self.sock.fileno() >= 0:
            self.loop.remove_reader(self.sock.fileno())
            self.loop.remove_writer(self.sock.fileno())
            self.sock.close()
        if not self.parser.closed:
            self.parser.connection_lost(None)


@dataclass
class SlackRequest:
    """One request to ``/slack/events`` and what became of it."""

    phase: str
    kind: str  # "help" | "list" | "click" | "owner-click"
    detail: str  # command text or action id
    message_ts: str
    response_url: str
    scheduled: float = 0.0  # perf_counter
    sent: float = 0.0
    answered: float = 0.0
    sent_wall: float = 0.0
    answered_wall: float = 0.0
    acked_wall: float = 0.0  # when the kernel got the answer: the server's ack, to within µs
    status: int = 0
    dispatch_lag: float = 0.0

    @property
    def latency(self) -> float:
        """Scheduled send to this process reading the answer."""
        return self.answered - self.scheduled

    @property
    def server_latency(self) -> float:
        """Scheduled send to the server's answer entering the kernel (no reading delay here)."""
        return (self.sent - self.scheduled) + self.service

    @property
    def service(self) -> float:
        """From this process writing the request to the server's answer: no generator lag."""
        return self.acked_wall - self.sent_wall

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def http_request(host: str, signed: SignedRequest) -> bytes:
    """The bytes Slack's HTTP client puts on the wire for ``signed``."""
    head = [
        "POST /slack/events HTTP/1.1",
        f"Host: {host}",
        "Accept: */*",
        "Accept-Encoding: gzip,deflate",
        *(f"{k}: {v}" for k, v in signed.headers.items()),
        f"Content-Length: {len(signed.body)}",
    ]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + signed.body


class SlackTraffic:
    """Builds the request mix and sends it open loop at a fixed rate."""

    def __init__(self, port: int, emulator: Emulator, urls: dict[str, list[str]]) -> None:
        self.port = port
        self.host = f"127.0.0.1:{port}"
        self.emulator = emulator
        self.signer = RequestSigner(SECRET)
        self.urls = urls
        self.messages: list[dict[str, Any]] = []
        self.counter = 0
        self.requests: list[SlackRequest] = []

    def refresh(self) -> None:
        self.messages = [m for m in self.emulator.ask("messages") if m.get("blocks")]

    def _buttons(self, owner: bool) -> list[tuple[dict[str, Any], str]]:
        found = []
        for message in self.messages:
            if owner and "tool calls failing" not in str(message.get("text")):
                continue  # the owner owns the ToolCallFailureRate runbook only
            for block in message.get("blocks") or ():
                for element in block.get("elements") or ():
                    action = str(element.get("action_id", ""))
                    if action.startswith(("ballast.run:", "ballast.approve:")):
                        found.append((message, action))
        return found

    def build(self, phase: str) -> tuple[SlackRequest, bytes]:
        n = self.counter
        self.counter += 1
        slot = n % 40
        kind = "owner-click" if slot == 39 else "click" if slot % 2 == 0 else "list"
        if slot % 4 == 3 and kind != "owner-click":
            kind = "help"
        buttons = self._buttons(kind == "owner-click") if kind.endswith("click") else []
        if kind == "owner-click" and not buttons:
            kind, buttons = "click", self._buttons(False)
        if kind.endswith("click") and buttons:
            message, action = buttons[n // 2 % len(buttons)]
            user = OWNER if kind == "owner-click" else STRANGER
            url = self.urls["actions"][n]
            payload = click(message, action, user=user, channel=INCIDENTS, response_url=url)
            signed = self.signer.interaction(payload)
            request = SlackRequest(phase, kind, action, str(message["ts"]), url)
        else:
            kind = kind if kind in ("help", "list") else "list"
            url = self.urls["commands"][n]
            form = slash_command_form(
                "/ballast", kind, user=STRANGER, channel=INCIDENTS, response_url=url
            )
            signed = self.signer.slash_command(form)
            request = SlackRequest(phase, kind, f"/ballast {kind}", "", url)
        return request, http_request(self.host, signed)

    async def _refresh_every(self, seconds: float) -> None:
        """Clicks follow the messages as they change (posted, updated in place)."""
        while True:
            await asyncio.sleep(seconds)
            await asyncio.to_thread(self.refresh)

    async def run(self, phase: str, rate: float, seconds: float, pool: int = 8) -> None:
        """``rate`` requests per second for ``seconds``, each at its scheduled time."""
        loop = asyncio.get_running_loop()
        idle: asyncio.Queue[KernelStampedConnection] = asyncio.Queue()
        for _ in range(pool):
            idle.put_nowait(await KernelStampedConnection.open(self.port))
        pending: set[asyncio.Task[None]] = set()
        refresher = loop.create_task(self._refresh_every(2.0))

        async def one(request: SlackRequest, data: bytes) -> None:
            request.dispatch_lag = time.perf_counter() - request.scheduled
            conn = await idle.get()
            request.sent, request.sent_wall = time.perf_counter(), time.time()
            try:
                status, _ = await asyncio.wait_for(conn.request(data), TIMEOUT)
            except (OSError, TimeoutError):  # ConnectionError is an OSError
                status = -1 if not conn.closed else 0
                conn.close()
                conn = await KernelStampedConnection.open(self.port)
            else:
                request.answered, request.answered_wall = conn.first_byte, conn.first_byte_wall
                request.acked_wall = conn.kernel_wall or conn.first_byte_wall
            request.status = status
            if conn.closed:
                conn = await KernelStampedConnection.open(self.port)
            idle.put_nowait(conn)

        start = time.perf_counter() + 0.05
        for i in range(max(1, round(rate * seconds))):
            scheduled = start + i / rate
            request, data = self.build(phase)
            request.scheduled = scheduled
            self.requests.append(request)
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            task = loop.create_task(one(request, data))
            pending.add(task)
            task.add_done_callback(pending.discard)
        if pending:
            await asyncio.wait(pending)
        refresher.cancel()
        while not idle.empty():
            idle.get_nowait().close()


# -- the server, as shipped or as an experiment ---------------------------------------------------


class SlackServer(Server):
    """``bench/ingest.py``'s server: ``python -m bot serve`` on SQLite, pinned to core 0."""

    def __init__(self, workdir: Path) -> None:
        super().__init__(Target("ballast", "sqlite"), workdir)


# -- what core 0 did ---------------------------------------------------------------------------


class CoreMonitor:
    """Samples core 0 every 10 ms from a thread: where the server's time went.

    Per server thread, ``/proc/<pid>/task/<tid>/schedstat`` gives nanoseconds on the CPU and
    nanoseconds runnable but waiting for it; ``/proc/stat`` gives core 0's busy and steal ticks.
    Over a stall this separates "the event loop was running (its own work)", "it was waiting
    for the core (other processes, or the server's own threads)" and "it was asleep" (blocked,
    e.g. on the GIL held by one of its database threads).
    """

    def __init__(self, pid: int, core: int = 0, every: float = 0.01) -> None:
        self.pid = pid
        self.core = f"cpu{core} "
        self.every = every
        self.samples: list[tuple[float, ...]] = []
        self._runs: dict[str, int] = {}  # ns on the CPU, by thread id
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="core-monitor", daemon=True)

    def start(self) -> CoreMonitor:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _sample(self) -> tuple[float, ...]:
        at = time.time()
        main_run = main_wait = 0
        with contextlib.suppress(OSError):
            for task in os.scandir(f"/proc/{self.pid}/task"):
                with contextlib.suppress(OSError, ValueError):
                    run, wait, _ = Path(task.path, "schedstat").read_text().split()
                    self._runs[task.name] = int(run)  # threads that ended keep their last
                    if task.name == str(self.pid):
                        main_run, main_wait = int(run), int(wait)
        all_run = sum(self._runs.values())
        busy = steal = 0
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith(self.core):
                ticks = [int(x) for x in line.split()[1:]]
                busy = ticks[0] + ticks[1] + ticks[2] + ticks[5] + ticks[6]
                steal = ticks[7]
                break
        tick = 1e9 / CLK_TCK  # ns per tick
        return (at, main_run, main_wait, all_run, busy * tick, steal * tick)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(self._sample())
            self._stop.wait(self.every)

    def between(self, start: float, end: float) -> dict[str, float]:
        """Milliseconds of each kind from the last sample before ``start`` to the first after."""
        times = [s[0] for s in self.samples]
        lo = max(0, bisect.bisect_right(times, start) - 1)
        hi = min(len(times) - 1, bisect.bisect_left(times, end))
        a, b = self.samples[lo], self.samples[hi]
        ms = [(y - x) / 1e6 for x, y in zip(a[1:], b[1:], strict=True)]
        wall = (b[0] - a[0]) * 1e3
        main_run, main_wait, all_run, busy, steal = ms
        return {
            "wall": wall,
            "loop_running": main_run,
            "loop_waiting_for_cpu": main_wait,
            "server_other_threads": all_run - main_run,
            "other_processes": max(0.0, busy - all_run),
            "steal": steal,
        }


def core_busy_seconds(core: int) -> float:
    """CPU seconds core ``core`` spent on anything but idle (from ``/proc/stat``)."""
    name = f"cpu{core} "
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith(name):
            ticks = [int(x) for x in line.split()[1:]]
            return (ticks[0] + ticks[1] + ticks[2] + ticks[5] + ticks[6]) / CLK_TCK
    return 0.0


def stall_breakdown(
    requests: list[SlackRequest], monitor: CoreMonitor, threshold: float
) -> dict[str, Any]:
    """Where core 0's time went while acks were slower than ``threshold`` seconds.

    Slow requests overlap (one stall delays every request that arrives during it), so their
    windows are merged before adding up.
    """
    slow = sorted((r.sent_wall, r.acked_wall) for r in requests if r.ok and r.service > threshold)
    merged: list[list[float]] = []
    for start, end in slow:
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    totals: Counter[str] = Counter()
    for start, end in merged:
        for key, value in monitor.between(start, end).items():
            totals[key] += value
    return {"requests": len(slow), "stalls": len(merged), **totals}


# -- analysis ----------------------------------------------------------------------------------


@dataclass
class LatencyRow:
    phase: str
    kind: str
    n: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    server_p50_ms: float
    server_p99_ms: float
    server_max_ms: float
    service_p50_ms: float
    service_p99_ms: float
    non_2xx: dict[str, int]


def latency_rows(requests: list[SlackRequest], phase: str) -> list[LatencyRow]:
    rows = []
    mine = [r for r in requests if r.phase == phase]
    groups = {
        "slash commands": [r for r in mine if r.kind in ("help", "list")],
        "button clicks": [r for r in mine if r.kind.endswith("click")],
        "all": mine,
    }
    for kind, chosen in groups.items():
        if not chosen:
            continue
        values = sorted(r.latency for r in chosen if r.ok)
        server = sorted(r.server_latency for r in chosen if r.ok)
        service = sorted(r.service for r in chosen if r.ok)
        non = Counter(str(r.status) for r in chosen if not r.ok)
        rows.append(
            LatencyRow(
                phase,
                kind,
                len(chosen),
                percentile(values, 50) * 1e3,
                percentile(values, 90) * 1e3,
                percentile(values, 99) * 1e3,
                (values[-1] if values else float("nan")) * 1e3,
                percentile(server, 50) * 1e3,
                percentile(server, 99) * 1e3,
                (server[-1] if server else float("nan")) * 1e3,
                percentile(service, 50) * 1e3,
                percentile(service, 99) * 1e3,
                dict(non),
            )
        )
    return rows


def outcome(text: str) -> str:
    if "not an owner" in text:
        return "refused: not an owner"
    if "out of date" in text or "version" in text:
        return "refused: button out of date"
    if re.search(r": (applied|succeeded|done)", text):
        return "mitigation ran"
    if text.startswith("Open incidents") or "No open incidents" in text:
        return "incident list"
    if text.startswith("*Ballast*"):
        return "help"
    return re.sub(r"[0-9]+", "N", text)[:60]


@dataclass
class AckCheck:
    """Whether anything went to Slack on behalf of a request before its ack."""

    requests: int = 0
    answered_by_response_url: int = 0
    without_response_post: int = 0
    early_posts: dict[str, int] = field(default_factory=dict)  # by request kind
    posts: dict[str, int] = field(default_factory=dict)  # requests with a post, by kind
    early_margin_ms: dict[str, float] = field(default_factory=dict)  # worst, by kind
    post_margin_p50_ms: dict[str, float] = field(default_factory=dict)
    calls_total: int = 0
    calls_during_pending: dict[str, int] = field(default_factory=dict)  # by method
    attributable_early_calls: list[dict[str, Any]] = field(default_factory=list)
    outcomes: dict[str, int] = field(default_factory=dict)


def check_before_ack(requests: list[SlackRequest], log: dict[str, Any]) -> AckCheck:
    check = AckCheck()
    posts: dict[str, list[dict[str, Any]]] = {}
    for post in log["posts"]:
        posts.setdefault(post["url"], []).append(post)
    margins: dict[str, list[float]] = {}
    early: Counter[str] = Counter()
    outcomes: Counter[str] = Counter()
    answered = [r for r in requests if r.ok]
    check.requests = len(answered)
    for r in answered:
        mine = posts.get(r.response_url, [])
        if not mine:
            check.without_response_post += 1
            continue
        check.answered_by_response_url += 1
        first = min(p["at"] for p in mine)
        group = "slash command" if r.kind in ("help", "list") else "button click"
        margins.setdefault(group, []).append(first - r.acked_wall)
        if first < r.acked_wall:
            early[group] += 1
        outcomes[f"{r.kind}: {outcome(mine[0]['text'])}"] += 1
    check.early_posts = {g: early.get(g, 0) for g in margins}
    check.posts = {g: len(v) for g, v in margins.items()}
    for group, values in margins.items():
        values.sort()
        check.early_margin_ms[group] = values[0] * 1e3
        check.post_margin_p50_ms[group] = percentile(values, 50) * 1e3
    check.outcomes = dict(outcomes.most_common())

    windows = sorted(answered, key=lambda r: r.sent_wall)
    starts = [r.sent_wall for r in windows]
    during: Counter[str] = Counter()
    check.calls_total = len(log["calls"])
    for call in log["calls"]:
        at = call["at"]
        lo = bisect.bisect_left(starts, at - TIMEOUT)
        hi = bisect.bisect_right(starts, at)
        pending = [r for r in windows[lo:hi] if r.sent_wall <= at <= r.acked_wall]
        if not pending:
            continue
        during[call["method"]] += 1
        for r in pending:
            on_clicked = r.kind == "owner-click" and r.message_ts in (call["ts"], call["thread_ts"])
            if call["method"] in REQUEST_ONLY or call["method"].startswith("views.") or on_clicked:
                check.attributable_early_calls.append(
                    {
                        "method": call["method"],
                        "request": f"{r.phase} {r.kind} {r.detail}",
                        "ms_after_send": (at - r.sent_wall) * 1e3,
                        "ms_before_ack": (r.acked_wall - at) * 1e3,
                    }
                )
    check.calls_during_pending = dict(during.most_common())
    return check


# -- the run -----------------------------------------------------------------------------------


@dataclass
class Plan:
    rate: float  # Slack requests per second
    alerts_per_second: float
    warmup: float
    idle: float
    busy: float
    drain: float  # Slack requests after the alerts stop, while the engine works off its backlog


FULL = Plan(rate=20, alerts_per_second=3000, warmup=2, idle=10, busy=60, drain=15)
QUICK = Plan(rate=20, alerts_per_second=3000, warmup=1, idle=4, busy=10, drain=5)


@dataclass
class Window:
    name: str
    seconds: float
    server_cpu: float
    client_cpu: float
    emulator_cpu: float
    core0: dict[str, float]  # ms of each kind over the window (CoreMonitor)
    core1_others: float  # share of core 1 used by processes other than generator and emulator


@dataclass
class Result:
    machine: dict[str, Any]
    plan: Plan
    server: str = "ballast serve"
    latency: list[LatencyRow] = field(default_factory=list)
    first_request: dict[str, Any] = field(default_factory=dict)
    windows: list[Window] = field(default_factory=list)
    ingest: dict[str, Any] = field(default_factory=dict)
    slack_dispatch_lag_p99_ms: float = 0.0
    check: AckCheck = field(default_factory=AckCheck)
    web_api: dict[str, Any] = field(default_factory=dict)
    profile: list[str] = field(default_factory=list)
    stalls: dict[str, dict[str, Any]] = field(default_factory=dict)  # by phase
    requests: list[dict[str, Any]] = field(default_factory=list)  # every one, for --json


class Bench:
    def __init__(self, plan: Plan, workdir: Path, profile: bool) -> None:
        self.plan = plan
        self.workdir = workdir
        self.profile = profile
        self.result = Result(machine(), plan)
        self.tag = int(time.time()) & 0xFFFF
        self.monitor: CoreMonitor | None = None

    def log(self, line: str) -> None:
        print(line, flush=True)

    async def run(self) -> Result:
        emulator = Emulator()
        server: Server | None = None
        try:
            post_to(emulator)
            server = SlackServer(self.workdir)
            server.start()
            self.monitor = CoreMonitor(server.pid).start()
            self.log(
                f"ballast serve pid {server.pid} on :{server.port}; emulator {emulator.base_url}"
            )
            await self.measure(server, emulator)
        finally:
            if self.monitor is not None:
                self.monitor.stop()
            if server is not None:
                server.stop()
            emulator.stop()
        return self.result

    def payloads(self, port: int) -> Payloads:
        self.tag = (self.tag + 1) & 0xFFFF
        return Payloads(5, self.tag, f"127.0.0.1:{port}")

    async def window(
        self, name: str, server: Server, emulator: Emulator, work: Any
    ) -> tuple[Any, Window]:
        cpu0, me0, emu0, wall0 = server.cpu(), time.process_time(), emulator.cpu(), time.time()
        core1 = core_busy_seconds(CLIENT_CORE)
        value = await work
        wall = time.time() - wall0
        core1 = core_busy_seconds(CLIENT_CORE) - core1
        mine = time.process_time() - me0 + emulator.cpu() - emu0
        assert self.monitor is not None
        window = Window(
            name,
            wall,
            (server.cpu() - cpu0) / wall,
            (time.process_time() - me0) / wall,
            (emulator.cpu() - emu0) / wall,
            self.monitor.between(wall0, wall0 + wall),
            max(0.0, core1 - mine) / wall,
        )
        self.result.windows.append(window)
        return value, window

    async def measure(self, server: Server, emulator: Emulator) -> None:
        plan = self.plan
        total = 1 + round(plan.rate * (plan.warmup + plan.idle + plan.busy + plan.drain)) + 100
        urls = {
            kind: await asyncio.to_thread(emulator.ask, "urls", kind=kind, n=total)
            for kind in ("commands", "actions")
        }
        traffic = SlackTraffic(server.port, emulator, urls)

        # The very first request after start, alone: Bolt authorizes it with auth.test.
        await traffic.run("first", 1, 1, pool=1)
        first = traffic.requests[0]
        self.log(f"first request after start: {first.status} in {first.latency * 1e3:.1f} ms")

        # A few incidents, so there are messages with buttons to click.
        await open_loop(server.port, self.payloads(server.port), 30, 1.0, pool=2)
        for _ in range(150):
            await asyncio.to_thread(traffic.refresh)
            if traffic._buttons(True):
                break
            await asyncio.sleep(0.1)
        else:
            raise RuntimeError("no incident message with buttons reached the emulator")
        await traffic.run("warmup", plan.rate, plan.warmup)

        self.log(f"idle: {plan.rate:.0f} Slack requests/s for {plan.idle:.0f} s, no alerts")
        await self.window("idle", server, emulator, traffic.run("idle", plan.rate, plan.idle))

        self.log(
            f"busy: {plan.rate:.0f} Slack requests/s for {plan.busy:.0f} s "
            f"under {plan.alerts_per_second:,.0f} alerts/s"
        )
        lead = 1.0  # alerts start first; the Slack window lies inside the alert window
        profiler = self.start_profiler(server.pid, plan.busy + lead)

        async def busy() -> Samples:
            ingest = asyncio.create_task(
                open_loop(
                    server.port,
                    self.payloads(server.port),
                    plan.alerts_per_second,
                    plan.busy + 2 * lead,
                )
            )
            await asyncio.sleep(lead)
            await traffic.run("busy", plan.rate, plan.busy)
            return await ingest

        samples, _ = await self.window("busy", server, emulator, busy())
        self.record_ingest(samples, server)
        if profiler is not None:
            self.result.profile = self.read_profile(profiler)

        pending = server.metric("ballast_inbox_pending")
        self.log(
            f"drain: {plan.rate:.0f} Slack requests/s for {plan.drain:.0f} s, no new alerts, "
            f"{pending:,.0f} alerts waiting for the incident engine"
        )
        await self.window("drain", server, emulator, traffic.run("drain", plan.rate, plan.drain))
        self.result.ingest["inbox_pending_after_drain"] = server.metric("ballast_inbox_pending")
        await asyncio.sleep(3.0)  # late response_url posts and Web API calls
        log = await asyncio.to_thread(emulator.ask, "log")

        requests = traffic.requests
        assert self.monitor is not None
        for phase in ("idle", "busy", "drain"):
            self.result.latency.extend(latency_rows(requests, phase))
            mine = [r for r in requests if r.phase == phase]
            self.result.stalls[phase] = stall_breakdown(mine, self.monitor, STALL)
        busy_lags = sorted(r.dispatch_lag for r in requests if r.phase == "busy")
        self.result.slack_dispatch_lag_p99_ms = percentile(busy_lags, 99) * 1e3
        first_calls = [
            c["method"] for c in log["calls"] if first.sent_wall <= c["at"] <= first.acked_wall
        ]
        self.result.first_request = {
            "status": first.status,
            "latency_ms": first.latency * 1e3,
            "web_api_calls_before_ack": first_calls,
        }
        self.result.requests = [asdict(r) for r in requests]
        measured = [r for r in requests if r.phase in ("idle", "busy", "drain")]
        self.result.check = check_before_ack(measured, log)
        self.result.web_api = {
            "calls": len(log["calls"]),
            "by_method": dict(Counter(c["method"] for c in log["calls"]).most_common()),
            "rate_limited": sum(1 for c in log["calls"] if c["status"] == 429),
            "unretried_429": log["unretried_429"],
        }

    def record_ingest(self, samples: Samples, server: Server) -> None:
        latencies = sorted(samples.latency)
        elapsed = max(samples.last_answer - samples.first_send, 1e-9)
        ok = samples.statuses.get(200, 0)
        self.result.ingest = {
            "alerts_per_s": ok * 5 / elapsed,
            "notifications": sum(samples.statuses.values()),
            "non_2xx": {str(k): v for k, v in samples.statuses.items() if not 200 <= k < 300},
            "p50_ms": percentile(latencies, 50) * 1e3,
            "p99_ms": percentile(latencies, 99) * 1e3,
            "max_ms": (latencies[-1] if latencies else float("nan")) * 1e3,
            "dispatch_lag_p99_ms": percentile(sorted(samples.dispatch_lag), 99) * 1e3,
            "inbox_pending": server.metric("ballast_inbox_pending"),
        }

    def start_profiler(self, pid: int, seconds: float) -> subprocess.Popen[bytes] | None:
        if not self.profile:
            return None
        if shutil.which("py-spy") is None:
            self.log("py-spy not found: no profile")
            return None
        out = self.workdir / "profile.txt"
        command = ["py-spy", "record", "--pid", str(pid), "--duration", str(int(seconds)),
                   "--rate", "250", "--nonblocking", "--format", "raw",
                   "--output", str(out)]  # fmt: skip
        return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def read_profile(self, profiler: subprocess.Popen[bytes]) -> list[str]:
        try:
            profiler.wait(30)
        except subprocess.TimeoutExpired:
            profiler.kill()
        out = self.workdir / "profile.txt"
        if not out.exists():
            return ["(py-spy wrote no profile)"]
        return summarize_profile(out.read_text().splitlines())


def summarize_profile(lines: Iterable[str]) -> list[str]:
    """Where the server's CPU samples went: by area (inclusive) and the top self frames."""
    areas = {
        "Slack requests: Bolt + listeners": ("slack_bolt", "bot/slack/listeners"),
        "alert webhooks (HTTP + intake)": ("bot/api/webhooks", "bot/intake"),
        "incident engine": ("bot/incidents",),
        "Slack outbox delivery": ("bot/slack/delivery", "bot/slack/outbox"),
        "SQLite (aiosqlite thread)": ("aiosqlite",),
        "uvicorn/HTTP parsing": ("uvicorn/protocols",),
    }
    total = 0
    by_area: Counter[str] = Counter()
    selfs: Counter[str] = Counter()
    for line in lines:
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        for area, needles in areas.items():
            if any(n in stack for n in needles):
                by_area[area] += count
        selfs[re.sub(r" \(.*/site-packages/", " (", stack.rsplit(";", 1)[-1])] += count
    if not total:
        return ["(no samples)"]
    out = [f"{total} samples (250/s, CPU-active stacks only); areas overlap (inclusive)"]
    out += [f"{share / total:5.1%} {area}" for area, share in by_area.most_common()]
    out.append("top self time:")
    out += [f"{share / total:5.1%} {frame}" for frame, share in selfs.most_common(12)]
    return out


# -- report ------------------------------------------------------------------------------------


def _ms(value: float) -> str:
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def report(result: Result) -> str:
    plan = result.plan
    out = [
        f"Server: {result.server}. {plan.rate:.0f} Slack requests/s: {plan.idle:.0f} s idle, "
        f"{plan.busy:.0f} s under {plan.alerts_per_second:,.0f} alerts/s, {plan.drain:.0f} s "
        "while the engine drains.\n",
        "Ack latency in ms. Open loop: from the scheduled send time to the 2xx as this process "
        "read it (p50 … max), and as the kernel received it, i.e. when the server wrote it "
        "(written p99, max). Service: from the actual send to the server's write (no generator "
        "lag).\n",
    ]
    headers = ["phase", "requests", "n", "p50", "p90", "p99", "max", "written p99",
               "written max", "service p50", "service p99", "non-2xx"]  # fmt: skip
    rows = [
        [
            r.phase,
            r.kind,
            str(r.n),
            _ms(r.p50_ms),
            _ms(r.p90_ms),
            _ms(r.p99_ms),
            _ms(r.max_ms),
            _ms(r.server_p99_ms),
            _ms(r.server_max_ms),
            _ms(r.service_p50_ms),
            _ms(r.service_p99_ms),
            str(sum(r.non_2xx.values())),
        ]
        for r in result.latency
    ]
    out.append(table(headers, rows))
    ing = result.ingest
    out.append(
        f"\nAlerts during the busy window: {ing['alerts_per_s']:,.0f} alerts/s answered "
        f"({ing['notifications']:,} notifications of 5), p50 {_ms(ing['p50_ms'])} ms, "
        f"p99 {_ms(ing['p99_ms'])} ms, max {_ms(ing['max_ms'])} ms, "
        f"non-2xx {ing['non_2xx'] or 0}; alerts not yet through the incident engine: "
        f"{ing['inbox_pending']:,.0f} at its end, {ing['inbox_pending_after_drain']:,.0f} after "
        "the drain window"
    )
    out.append(
        f"Generator dispatch lag p99: alerts {_ms(ing['dispatch_lag_p99_ms'])} ms, "
        f"Slack {_ms(result.slack_dispatch_lag_p99_ms)} ms\n"
    )

    def share(part: dict[str, float], key: str) -> str:
        return f"{part.get(key, 0.0) / max(part.get('wall', 0.0), 1e-9):.0%}"

    keys = ["loop_running", "loop_waiting_for_cpu", "server_other_threads", "other_processes",
            "steal"]  # fmt: skip
    rows = [
        [w.name, f"{w.seconds:.1f}", f"{w.server_cpu:.0%}", *(share(w.core0, k) for k in keys),
         f"{w.client_cpu:.0%}", f"{w.emulator_cpu:.0%}", f"{w.core1_others:.0%}"]
        for w in result.windows
    ]  # fmt: skip
    headers = ["window", "s", "server cpu", "core 0: loop runs", "loop waits for cpu",
               "server threads", "other processes", "steal", "core 1: generator",
               "emulator", "other processes"]  # fmt: skip
    out.append(table(headers, rows))
    rows = [
        [phase, str(st["requests"]), str(st["stalls"]), f"{st.get('wall', 0.0):.0f}",
         *(share(st, k) for k in keys)]
        for phase, st in result.stalls.items()
        if st["requests"]
    ]  # fmt: skip
    if rows:
        out.append(
            f"\nStalls: acks slower than {STALL * 1e3:.0f} ms from send to write, their "
            "overlapping windows merged, and what core 0 did meanwhile (sampled every 10 ms)\n"
        )
        headers = ["phase", "slow acks", "stalls", "ms", "loop runs", "loop waits for cpu",
                   "server threads", "other processes", "steal"]  # fmt: skip
        out.append(table(headers, rows))
    first = result.first_request
    out.append(
        f"\nFirst request after start: {first['status']} in {first['latency_ms']:.1f} ms; "
        f"Web API calls while it waited for its ack: {first['web_api_calls_before_ack'] or 'none'}"
    )
    c = result.check
    out.append("\nAnything sent to Slack before the ack? (idle, busy and drain requests)\n")
    out.append(
        f"- {c.requests} requests answered 2xx; {c.answered_by_response_url} answered the user "
        f"through their response_url, {c.without_response_post} did not (within 3 s)"
    )
    for group, early in c.early_posts.items():
        out.append(
            f"- {group}s: {early} of {c.posts[group]} response_url posts reached Slack before "
            "the ack left the server; post time minus ack time: "
            f"median {c.post_margin_p50_ms[group]:+.1f} ms, "
            f"earliest {c.early_margin_ms[group]:+.1f} ms"
        )
    out.append(
        f"- Web API calls: {c.calls_total}; made while some request waited for its ack: "
        f"{c.calls_during_pending or 'none'}; attributable to that request: "
        f"{len(c.attributable_early_calls)}"
    )
    out.extend(
        f"  - {a['method']} {a['ms_after_send']:.1f} ms after sending {a['request']}, "
        f"{a['ms_before_ack']:.1f} ms before its ack"
        for a in c.attributable_early_calls[:10]
    )
    out.append("- what the requests did: " + ", ".join(f"{k} {v}" for k, v in c.outcomes.items()))
    api = result.web_api
    out.append(
        f"- Slack Web API over the whole run: {api['calls']} calls {api['by_method']}, "
        f"{api['rate_limited']} answered 429 ({api['unretried_429']} never made good)"
    )
    if result.profile:
        out.append("\nServer profile during the busy window (py-spy)\n")
        out.extend(f"    {line}" for line in result.profile)
    out.append("\nGoals\n")
    busy = next((r for r in result.latency if r.phase == "busy" and r.kind == "all"), None)
    if busy is not None:
        met = busy.p99_ms <= 100 and not busy.non_2xx
        window = next((w for w in result.windows if w.name == "busy"), None)
        core0 = window.core0 if window else {}
        others = core0.get("other_processes", 0.0) / max(core0.get("wall", 0.0), 1e-9)
        others1 = window.core1_others if window else 0.0
        if others > 0.05 or others1 > 0.05:
            out.append(
                f"- caution: other processes used {others:.0%} of core 0 (the server's) and "
                f"{others1:.0%} of core 1 (the generator's) during the busy window; the stall "
                "table and the service columns show how much of the tail is theirs"
            )
        out.append(
            f"- ack p99 {busy.p99_ms:.1f} ms read by the client, {busy.server_p99_ms:.1f} ms "
            f"written by the server, under {result.plan.alerts_per_second:,.0f} alerts/s, "
            f"{sum(busy.non_2xx.values())} non-2xx (p99 ≤ 100 ms): " + ("met" if met else "MISSED")
        )
    early_posts = sum(c.early_posts.values())
    early_calls = len(c.attributable_early_calls) + len(first["web_api_calls_before_ack"])
    out.append(
        "- no Slack call before the ack: "
        + ("met" if early_posts + early_calls == 0 else "MISSED")
        + f" ({early_posts} response_url posts before their ack, {early_calls} Web API calls "
        "made for a request before its ack, the first request's included)"
    )
    return "\n".join(out)


def main() -> None:
    if "--emulator-child" in sys.argv:
        emulator_child()
        return
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short windows (under 1 minute)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    parser.add_argument("--profile", action="store_true", help="py-spy the server when busy")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (log, DB)")
    args = parser.parse_args()
    if shutil.which("taskset") is None:
        sys.exit("taskset (util-linux) is needed to pin the server to a core")
    os.sched_setaffinity(0, {CLIENT_CORE})
    workdir = Path(tempfile.mkdtemp(prefix="ballast-bench-slack-", dir="/var/tmp"))
    plan = QUICK if args.quick else FULL
    started = time.perf_counter()
    bench = Bench(plan, workdir, args.profile)
    info = bench.result.machine
    print(f"work folder {workdir}; {info['cpu']}, {info['cores']} cores")
    print(f"load average {' '.join(info['loadavg_before'])} (other work on the machine)")
    try:
        import uvloop

        result = uvloop.run(bench.run())
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    result.machine["loadavg_after"] = Path("/proc/loadavg").read_text().split()[:3]
    print()
    print(report(result))
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(asdict(result), indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
