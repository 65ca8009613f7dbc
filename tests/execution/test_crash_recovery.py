"""SIGKILL while a mitigation is being applied: the restart finishes it, once.

``MitigationExecutor.recover()`` runs at start-up (the app's lifespan) and applies again every
execution a crash left ``running``. This drives it with real processes: ``ballast serve`` runs
an ``http_request`` mitigation against a target server the test owns, which hangs on the first
request so the execution is caught ``running``; the server is SIGKILLed there and restarted on
the same database. The target then sees the request again with the same ``Idempotency-Key``
(so a target that honours the key applies it once), the execution ends ``applied`` with one
``mitigation_applied`` timeline entry, and a further restart sends nothing.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import fresh_database_url
from tests.e2e.processes import BallastServer, wait_until
from tests.principals import BRIDGE, roster_yaml

pytestmark = pytest.mark.slow

TOKEN = "api-token-recovery"
AUTH = BRIDGE.headers  # may name the acting person (OWNER)
OWNER = "U0OWNER1"
MITIGATION = "pause-lane"
HANG_LIMIT = 60.0  # the hung answer gives up on its own after this, should a test go wrong

RUNBOOK = """\
id: svc/lane-overload
title: "lane overloaded on {{{{ labels.service }}}}"
service: svc
severity: sev2
owners: ["{owner}"]
match:
  - alertname="LaneOverload"
group_by: [service]
symptom: The batch lane is overloaded.
business_impact: Answers are late.
mitigations:
  - id: {mitigation}
    title: Pause the batch lane
    action: http_request
    params:
      method: POST
      url: "{url}/lanes/{{{{ labels.service }}}}/pause"
      json: {{reason: "{{{{ labels.alertname }}}}"}}
      timeout_s: 90
      risk: low
    mode: approve
"""


class Target:
    """A control plane on loopback that records every request with its ``Idempotency-Key``.

    The first request is held (no answer) until :meth:`release`; later ones answer at once.
    """

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.released = threading.Event()
        target = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                with target.lock:
                    target.requests.append(
                        {
                            "path": self.path,
                            "idempotency_key": self.headers.get("idempotency-key"),
                            "body": json.loads(body or b"null"),
                        }
                    )
                    first = len(target.requests) == 1
                if first:
                    target.released.wait(HANG_LIMIT)
                try:
                    self.send_response(200)
                    self.send_header("content-type", "application/json")
                    self.end_headers()
                    self.wfile.write(b'{"paused": true}')
                except OSError:
                    pass  # the caller was killed while we held the answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def count(self) -> int:
        with self.lock:
            return len(self.requests)

    def seen(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.requests)

    def release(self) -> None:
        self.released.set()

    def __enter__(self) -> Target:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def target() -> Iterator[Target]:
    with Target() as running:
        yield running


@pytest.fixture
def server_database_url(database_kind: str, tmp_path: Path) -> Iterator[str]:
    """One database the server is restarted on: a SQLite file, or a new PostgreSQL database."""
    with fresh_database_url(database_kind, tmp_path, "ballast_recover") as url:
        yield url


@pytest.fixture
def server(tmp_path: Path, server_database_url: str, target: Target) -> Iterator[BallastServer]:
    runbooks = tmp_path / "runbooks"
    runbooks.mkdir()
    (runbooks / "lane-overload.yaml").write_text(
        RUNBOOK.format(owner=OWNER, mitigation=MITIGATION, url=target.url)
    )
    config = tmp_path / "ballast.yaml"
    # A short lease: the restarted server (a new replica) takes the dead one's over once it
    # expires (bot/execution/leases.py).
    config.write_text(
        "http:\n  allowed_hosts: [127.0.0.1]\nexecution:\n  lease: 2s\n" + roster_yaml()
    )
    server = BallastServer(
        tmp_path,
        {
            "BALLAST_DATABASE_URL": server_database_url,
            "BALLAST_RUNBOOKS": str(runbooks),
            "BALLAST_CONFIG": str(config),
            "BALLAST_API_TOKEN": TOKEN,
            "BALLAST_LOG_FORMAT": "json",
        },
        tmp_path / "ballast.log",
    )
    yield server
    server.stop()


def open_incident(server: BallastServer) -> int:
    alert = {"labels": {"alertname": "LaneOverload", "service": "svc-a"}}
    response = httpx.post(
        f"{server.url}/webhooks/generic", json={"alerts": [alert]}, headers=AUTH, timeout=5
    )
    assert response.status_code == 200, response.text
    incidents = wait_until(
        lambda: httpx.get(f"{server.url}/api/v1/incidents", headers=AUTH, timeout=5).json()[
            "incidents"
        ],
        15,
        "the incident",
    )
    return int(incidents[0]["id"])


def detail(server: BallastServer, incident: int) -> dict[str, Any]:
    response = httpx.get(f"{server.url}/api/v1/incidents/{incident}", headers=AUTH, timeout=10)
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


def mitigation_state(server: BallastServer, incident: int) -> str:
    (mitigation,) = [m for m in detail(server, incident)["mitigations"] if m["id"] == MITIGATION]
    return str(mitigation["state"])


def applied_entries(server: BallastServer, incident: int) -> list[dict[str, Any]]:
    timeline = detail(server, incident)["timeline"]
    return [e for e in timeline if e["kind"] == "mitigation_applied"]


def test_restart_reapplies_running_execution_once(server: BallastServer, target: Target) -> None:
    server.start()
    incident = open_incident(server)

    def run() -> None:
        # The answer never comes: the server is killed while the target holds the request.
        with contextlib.suppress(httpx.HTTPError):
            httpx.post(
                f"{server.url}/api/v1/incidents/{incident}/mitigations/{MITIGATION}/run",
                json={"actor": OWNER},
                headers=AUTH,
                timeout=30,
            )

    runner = threading.Thread(target=run, daemon=True)
    runner.start()
    wait_until(lambda: target.count() == 1, 15, "the target to receive the mitigation")
    assert mitigation_state(server, incident) == "running"

    server.kill()
    runner.join(10)
    target.release()  # the held answer now goes nowhere: the caller is gone
    assert target.count() == 1

    server.start(timeout=60)  # recover() takes the execution over once its lease expires
    wait_until(lambda: target.count() == 2, 20, "recover() to send the request again")
    first, again = target.seen()
    assert first["idempotency_key"], "http_request sent no Idempotency-Key"
    assert again["idempotency_key"] == first["idempotency_key"]
    assert again["path"] == first["path"] == "/lanes/svc-a/pause"
    assert again["body"] == first["body"] == {"reason": "LaneOverload"}

    wait_until(
        lambda: mitigation_state(server, incident) == "applied", 20, "the execution to be applied"
    )
    (entry,) = applied_entries(server, incident)
    assert entry["details"]["mitigation_id"] == MITIGATION
    assert entry["details"]["idempotency_key"] == first["idempotency_key"]
    assert entry["details"]["response"]["status"] == 200

    # Nothing is left running, so a further restart applies nothing.
    server.stop()
    server.start(timeout=60)
    assert mitigation_state(server, incident) == "applied"
    assert len(applied_entries(server, incident)) == 1
    assert target.count() == 2
