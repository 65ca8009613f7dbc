"""The chaos rig: three ``ballast serve`` replicas on one PostgreSQL database, a round-robin
client, a control-plane gateway that times out, the Slack emulation answering 429 and 5xx, and
the faults (SIGKILL + restart, ``pg_terminate_backend``) driven by one seeded schedule.

Used by ``tests/chaos/test_chaos.py`` (about a minute, every CI run) and ``bench/chaos.py``
(a longer soak on demand). Everything that was sent and answered is counted in
:class:`Tally`; :mod:`tests.chaos.invariants` checks the end state against it.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.processes import BallastServer
from tests.principals import BRIDGE, roster_yaml
from tests.slack_emulator.payloads import SlackUser, click
from tests.slack_emulator.server import DEFAULT_CHANNEL, SlackEmulator
from tests.slack_emulator.signing import RequestSigner

AUTH = BRIDGE.headers  # a bridge principal: may name the owner who acts (tests/principals.py)
OWNERS = ("U0CHAOS1", "U0CHAOS2")
USERS = tuple(SlackUser(owner, f"owner{i}") for i, owner in enumerate(OWNERS, 1))
SIGNING_SECRET = "chaos-signing-secret"
# Buttons an owner clicks on an incident's message (when the message shows them).
CLICKS = (
    "ballast.run:pause",
    "ballast.run:supervise",
    "ballast.approve:pause",
    "ballast.undo:pause",
    "ballast.undo:supervise",
)
SERVICES = 6  # incident keys: one per service
LEASE_S = 2
GATEWAY_TIMEOUT_S = 1  # http_request timeout_s in the runbook
SLOW_EVERY = 5  # the gateway holds one request in this many past the timeout

RUNBOOK = """\
id: chaos/overload
title: "overload on {{{{ labels.service }}}}"
service: chaos
severity: sev2
owners: ["{owner1}", "{owner2}"]
match:
  - alertname="ChaosOverload"
group_by: [service]
symptom: Overloaded.
business_impact: Slow answers.
mitigations:
  - id: pause
    title: Pause the lane
    action: http_request
    params:
      method: POST
      url: "{gateway}/lanes/{{{{ labels.service }}}}/pause"
      timeout_s: {timeout}
      undo:
        method: POST
        url: "{gateway}/lanes/{{{{ labels.service }}}}/resume"
        timeout_s: {timeout}
      risk: low
    mode: approve
  - id: supervise
    title: Supervised autonomy
    action: set_autonomy
    params: {{service: "{{{{ labels.service }}}}", level: supervised}}
    mode: approve
"""


class Gateway:
    """The control plane behind ``http_request``: records each request with its
    ``Idempotency-Key`` and applies a key once (as a backend that honours the key would);
    every ``SLOW_EVERY``-th request is held past the caller's timeout."""

    def __init__(self, seed: int) -> None:
        self.requests: list[tuple[str, str]] = []  # (path, key)
        self.applied: Counter[str] = Counter()  # key -> effective applies (must stay <= 1)
        self.lock = threading.Lock()
        self.rng = random.Random(seed)
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length") or 0))
                key = self.headers.get("idempotency-key") or ""
                with gateway.lock:
                    gateway.requests.append((self.path, key))
                    slow = gateway.rng.randrange(SLOW_EVERY) == 0
                if slow:
                    time.sleep(GATEWAY_TIMEOUT_S + 0.5)  # the caller has given up (a timeout)
                with gateway.lock:
                    first = key not in gateway.applied
                    gateway.applied[key] += int(first)
                with contextlib.suppress(OSError):
                    self.send_response(200)
                    self.send_header("content-type", "application/json")
                    self.end_headers()
                    self.wfile.write(b'{"ok": true}')

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Tally:
    """What the client sent and got, and the faults injected."""

    alerts_sent: int = 0
    alerts_acked: set[str] = field(default_factory=set)  # label n of every 2xx'd alert
    statuses: Counter[int] = field(default_factory=Counter)
    actions: Counter[str] = field(default_factory=Counter)  # run/undo requests answered
    kills: int = 0
    pg_terminations: int = 0
    slack_faults: int = 0
    slack_faults_unmet: int = 0  # arranged but no call met them before the chaos ended
    unreachable: int = 0  # requests that found their replica down (tried on the next)

    def figures(self) -> dict[str, Any]:
        return {
            "alerts_sent": self.alerts_sent,
            "alerts_2xx": len(self.alerts_acked),
            "actions": dict(self.actions),
            "statuses": dict(sorted(self.statuses.items())),
            "kills": self.kills,
            "pg_terminations": self.pg_terminations,
            "slack_faults": self.slack_faults,
            "slack_faults_met": self.slack_faults - self.slack_faults_unmet,
            "unreachable": self.unreachable,
        }


class Cluster:
    """Three replicas behind a round-robin client, and the chaos that hits them."""

    def __init__(self, workdir: Path, database_url: str, seed: int, replicas: int = 3) -> None:
        self.workdir = workdir
        self.database_url = database_url
        self.rng = random.Random(seed)
        self.tally = Tally()
        self.gateway = Gateway(seed)
        self.slack = SlackEmulator(time_scale=20, users=USERS).start()
        runbooks = workdir / "runbooks"
        runbooks.mkdir(exist_ok=True)
        (runbooks / "chaos.yaml").write_text(
            RUNBOOK.format(
                owner1=OWNERS[0],
                owner2=OWNERS[1],
                gateway=self.gateway.url,
                timeout=GATEWAY_TIMEOUT_S,
            )
        )
        config = workdir / "ballast.yaml"
        config.write_text(
            "http:\n  allowed_hosts: [127.0.0.1]\n"
            f"execution:\n  lease: {LEASE_S}s\n  retry_deadline: 10s\n  max_attempts: 4\n"
            + roster_yaml()
        )
        env = {
            "BALLAST_DATABASE_URL": database_url,
            "BALLAST_RUNBOOKS": str(runbooks),
            "BALLAST_CONFIG": str(config),
            "BALLAST_LOG_FORMAT": "json",
            "BALLAST_LOG_LEVEL": "WARNING",
            "SLACK_BOT_TOKEN": "xoxb-chaos",
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "BALLAST_SLACK_API_URL": self.slack.base_url,
            "BALLAST_SLACK_CHANNEL": DEFAULT_CHANNEL.id,
        }
        self.servers = [
            BallastServer(workdir, env, workdir / f"replica-{i}.log") for i in range(replicas)
        ]
        self._next = 0
        self._n = 0

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        for server in self.servers:
            server.start(timeout=60)

    def close(self) -> None:
        for server in self.servers:
            server.stop()
        self.gateway.close()
        self.slack.stop()

    def alive(self) -> list[BallastServer]:
        return [s for s in self.servers if s.process is not None and s.process.poll() is None]

    # -- the round-robin client --------------------------------------------------------------

    async def request(
        self, client: httpx.AsyncClient, method: str, path: str, **kwargs: Any
    ) -> httpx.Response | None:
        """Send to the next replica; a replica that is down is skipped for the next one."""
        for _ in range(len(self.servers)):
            server = self.servers[self._next % len(self.servers)]
            self._next += 1
            try:
                response = await client.request(method, server.url + path, **kwargs)
            except httpx.HTTPError:
                self.tally.unreachable += 1
                continue
            self.tally.statuses[response.status_code] += 1
            return response
        return None

    async def storm(self, client: httpx.AsyncClient, until: float, per_second: float) -> None:
        """Alerts, five per webhook, over every service.

        A webhook whose answer is lost (its replica killed after the commit) is sent again to
        the next replica, as senders do; each alert carries its ``starts_at`` like
        Alertmanager's, which is what makes the resend a duplicate (docs/webhooks.md).
        """
        while time.monotonic() < until:
            alerts = []
            starts_at = datetime.now(UTC).isoformat()
            for _ in range(5):
                self._n += 1
                service = self.rng.randrange(SERVICES)
                labels = {
                    "alertname": "ChaosOverload",
                    "service": f"svc-{service}",
                    "n": str(self._n),
                }
                alerts.append({"labels": labels, "status": "firing", "starts_at": starts_at})
            self.tally.alerts_sent += len(alerts)
            response = await self.request(
                client, "POST", "/webhooks/generic", json={"alerts": alerts}, headers=AUTH
            )
            if response is not None and response.is_success:
                self.tally.alerts_acked.update(a["labels"]["n"] for a in alerts)
            await asyncio.sleep(1 / per_second)

    async def operators(self, client: httpx.AsyncClient, until: float) -> None:
        """Owners running, approving and undoing mitigations, on whichever replica is next."""
        while time.monotonic() < until:
            incidents = await self.incident_ids(client)
            if incidents:
                incident = self.rng.choice(incidents)
                mitigation = self.rng.choice(("pause", "supervise"))
                verb = self.rng.choice(("run", "run", "undo"))
                actor = self.rng.choice(OWNERS)
                path = f"/api/v1/incidents/{incident}/mitigations/{mitigation}/{verb}"
                response = await self.request(
                    client, "POST", path, json={"actor": actor}, headers=AUTH
                )
                if response is not None:
                    self.tally.actions[verb] += 1
            await asyncio.sleep(self.rng.uniform(0.05, 0.2))

    async def clickers(self, client: httpx.AsyncClient, until: float) -> None:
        """Owners clicking Run, Approve and Undo on the incident messages in Slack: signed
        ``block_actions`` to whichever replica is next, as Slack would send them."""
        signer = RequestSigner(SIGNING_SECRET)
        while time.monotonic() < until:
            await asyncio.sleep(self.rng.uniform(0.1, 0.4))
            messages = self.slack.messages(DEFAULT_CHANNEL.id)
            if not messages:
                continue
            message = self.rng.choice(messages)
            action = self.rng.choice(CLICKS)
            try:
                payload = click(
                    message,
                    action,
                    user=self.rng.choice(USERS),
                    channel=DEFAULT_CHANNEL,
                    response_url=self.slack.response_url("actions"),
                )
            except KeyError:
                continue  # the message does not show that button now
            signed = signer.interaction(payload)
            response = await self.request(
                client, "POST", "/slack/events", content=signed.body, headers=signed.headers
            )
            if response is not None:
                self.tally.actions["slack " + action.split(":")[0].removeprefix("ballast.")] += 1

    async def incident_ids(self, client: httpx.AsyncClient) -> list[int]:
        response = await self.request(client, "GET", "/api/v1/incidents", headers=AUTH)
        if response is None or response.status_code != 200:
            return []
        return [int(i["id"]) for i in response.json()["incidents"]]

    # -- faults ------------------------------------------------------------------------------

    async def killer(self, until: float, every: float) -> None:
        """SIGKILL a replica every few seconds; restart it a moment later."""
        while time.monotonic() < until:
            await asyncio.sleep(self.rng.uniform(every * 0.5, every * 1.5))
            alive = self.alive()
            if len(alive) < 2:
                continue
            victim = self.rng.choice(alive)
            victim.kill()
            self.tally.kills += 1
            # Restarted before the next kill: a replica starting is never the one killed.
            await asyncio.sleep(self.rng.uniform(0.2, 1.0))
            await asyncio.to_thread(victim.start, 60)

    async def terminator(self, until: float, every: float) -> None:
        """``pg_terminate_backend`` on a random connection of a replica, mid-whatever."""
        import asyncpg

        name = self.database_url.rsplit("/", 1)[1]
        admin = self.database_url.rsplit("/", 1)[0] + "/postgres"
        conn = await asyncpg.connect(admin)
        try:
            while time.monotonic() < until:
                await asyncio.sleep(self.rng.uniform(every * 0.5, every * 1.5))
                pid = await conn.fetchval(
                    "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> "
                    "pg_backend_pid() ORDER BY (state = 'idle in transaction') DESC, "
                    "(state = 'active') DESC, random() LIMIT 1",
                    name,
                )
                if pid is not None and await conn.fetchval("SELECT pg_terminate_backend($1)", pid):
                    self.tally.pg_terminations += 1
        finally:
            await conn.close()

    async def slack_faults(self, until: float, every: float) -> None:
        """The Slack emulation answers 429 (with Retry-After) or 5xx to the next calls, while
        the chaos lasts.

        A fault waits for the next call of its method, and chat.update calls are few (updates
        coalesce), so faults queue up; when the chaos ends Slack recovers and those left are
        dropped. Kept, they failed whichever update came next long after the storm, the same
        row again and again: its backoff grew past the settle's patience (CI, ``cbef3e1``:
        one update row at attempt 9, next try four minutes out)."""
        try:
            while time.monotonic() < until:
                await asyncio.sleep(self.rng.uniform(every * 0.5, every * 1.5))
                method = self.rng.choice(("chat.postMessage", "chat.update"))
                if self.rng.random() < 0.5:
                    self.slack.fail_next(method, "ratelimited", status=429, retry_after=1)
                else:
                    status = self.rng.choice((500, 503))
                    self.slack.fail_next(method, "internal_error", status=status)
                self.tally.slack_faults += 1
        finally:
            self.tally.slack_faults_unmet = self.slack.recover()

    # -- the run -----------------------------------------------------------------------------

    async def run(self, seconds: float, *, alerts_per_second: float = 8.0) -> None:
        until = time.monotonic() + seconds
        async with httpx.AsyncClient(timeout=15) as client:
            await asyncio.gather(
                self.storm(client, until, alerts_per_second),
                self.operators(client, until),
                self.operators(client, until),
                self.clickers(client, until),
                self.killer(until, every=4.0),
                self.terminator(until, every=3.0),
                self.slack_faults(until, every=2.0),
            )

    def settle(self, stall: float = 60.0, limit: float = 600.0) -> None:
        """Every replica up again; wait until nothing is left to do (checked by the caller's
        invariants; this only waits for the quiet).

        Slow is not stuck: the Slack backlog drains at Slack's own pace (one message a second
        per channel, which Ballast's budgets keep to), and a minute of chaos leaves a couple of
        minutes of thread replies. So this fails when the work left stops shrinking for
        ``stall`` seconds, or after ``limit`` in all."""
        for server in self.servers:
            if server.process is None or server.process.poll() is not None:
                server.start(timeout=60)
        from tests.chaos.invariants import pending_detail, pending_work

        started = last_progress = time.monotonic()
        fewest: int | None = None
        while True:
            left = pending_work(self.database_url)
            if not left:
                return
            now = time.monotonic()
            total = sum(left.values())
            if fewest is None or total < fewest:
                fewest, last_progress = total, now
            if now - last_progress > stall or now - started > limit:
                detail = "\n".join(pending_detail(self.database_url))
                why = "no progress" if now - last_progress > stall else "not done"
                raise AssertionError(
                    f"the cluster did not settle ({why} after {now - started:.0f}s); "
                    f"still pending: {left}\n{detail}"
                )
            time.sleep(0.5)


@contextlib.contextmanager
def cluster(workdir: Path, database_url: str, seed: int) -> Iterator[Cluster]:
    rig = Cluster(workdir, database_url, seed)
    try:
        rig.start()
        yield rig
    finally:
        rig.close()
