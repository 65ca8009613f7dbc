"""SIGTERM on a real ``ballast serve``: readiness false first, work in flight finished or handed
back, exit status 0 (bot/runtime/graceful.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import fresh_database_url
from tests.e2e.processes import BallastServer, wait_until
from tests.execution.test_crash_recovery import (
    MITIGATION,
    OWNER,
    RUNBOOK,
    TOKEN,
    Target,
    applied_entries,
    mitigation_state,
    open_incident,
)
from tests.execution.test_replica_takeover import start_run
from tests.principals import roster_yaml

pytestmark = pytest.mark.slow


@pytest.fixture
def target() -> Iterator[Target]:
    with Target() as running:
        yield running


@pytest.fixture
def make_server(tmp_path: Path, target: Target) -> Iterator[object]:
    runbooks = tmp_path / "runbooks"
    runbooks.mkdir()
    (runbooks / "lane-overload.yaml").write_text(
        RUNBOOK.format(owner=OWNER, mitigation=MITIGATION, url=target.url)
    )
    config = tmp_path / "ballast.yaml"
    config.write_text("http:\n  allowed_hosts: [127.0.0.1]\n" + roster_yaml())  # lease: 30 s
    servers: list[BallastServer] = []
    with fresh_database_url("sqlite", tmp_path, "unused") as url:

        def make(**env: str) -> BallastServer:
            server = BallastServer(
                tmp_path,
                {
                    "BALLAST_DATABASE_URL": url,
                    "BALLAST_RUNBOOKS": str(runbooks),
                    "BALLAST_CONFIG": str(config),
                    "BALLAST_API_TOKEN": TOKEN,
                    "BALLAST_LOG_FORMAT": "json",
                    **env,
                },
                tmp_path / "ballast.log",
            )
            servers.append(server)
            return server

        yield make
        for server in servers:
            server.stop()


def terminate(server: BallastServer) -> float:
    assert server.process is not None
    server.process.send_signal(signal.SIGTERM)
    return time.monotonic()


def test_sigterm_turns_unready_then_finishes_the_execution_in_flight(
    make_server: Any, target: Target
) -> None:
    server = make_server(BALLAST_SHUTDOWN_DELAY="1.5", BALLAST_SHUTDOWN_GRACE="20")
    server.start()
    incident = open_incident(server)
    runner = start_run(server, incident)
    wait_until(lambda: target.count() == 1, 15, "the gateway to receive the mitigation")

    sent = terminate(server)
    ready = wait_until(
        lambda: httpx.get(f"{server.url}/readyz", timeout=1).status_code == 503, 1, "unready"
    )
    assert ready
    body = httpx.get(f"{server.url}/readyz", timeout=1).json()
    assert body["checks"]["startup"] == "stopping"
    assert httpx.get(f"{server.url}/healthz", timeout=1).status_code == 200  # still serving
    target.release()  # the execution in flight now finishes inside the grace period
    assert server.process is not None
    assert server.process.wait(30) == 0
    assert time.monotonic() - sent >= 1.5
    runner.join(5)

    server.start()
    assert mitigation_state(server, incident) == "applied"
    assert len(applied_entries(server, incident)) == 1
    assert target.count() == 1


def test_what_outlives_the_grace_is_handed_back_and_taken_over_at_once(
    make_server: Any, target: Target
) -> None:
    server = make_server(BALLAST_SHUTDOWN_DELAY="0", BALLAST_SHUTDOWN_GRACE="1")
    server.start()
    incident = open_incident(server)
    start_run(server, incident)
    wait_until(lambda: target.count() == 1, 15, "the gateway to receive the mitigation")

    terminate(server)
    assert server.process is not None
    assert server.process.wait(30) == 0
    assert "handed 1 unfinished execution(s) back" in server.logs()
    target.release()

    # The lease is 30 s, but it was handed back: the restart takes it over at once.
    server.start()
    wait_until(lambda: target.count() == 2, 10, "the takeover to send it again")
    first, again = target.seen()
    assert again["idempotency_key"] == first["idempotency_key"]
    wait_until(lambda: mitigation_state(server, incident) == "applied", 10, "applied")
    assert len(applied_entries(server, incident)) == 1


def test_sigterm_while_starting_against_an_absent_database_exits_0_at_once(
    tmp_path: Path, runbooks_dir: Path
) -> None:
    """PostgreSQL away: the start-up's migration keeps trying for 30 s. A SIGTERM then (a
    rolling update, ``systemctl stop``) ends it at once, exit status 0."""
    log_path = tmp_path / "ballast.log"
    env = {
        **os.environ,
        # Nothing listens on port 1: every connection is refused.
        "BALLAST_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/test",
        "BALLAST_RUNBOOKS": str(runbooks_dir),
        "BALLAST_API_TOKEN": TOKEN,
        "BALLAST_SHUTDOWN_DELAY": "20",  # what a SIGTERM while serving would wait first
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "bot", "serve", "--port", "0"],
            cwd=tmp_path,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until(
            lambda: "migrating the database at start failed" in log_path.read_text(),
            60,
            "the start-up's migration to fail against the absent database",
        )
        assert process.poll() is None
        sent = time.monotonic()
        process.send_signal(signal.SIGTERM)
        assert process.wait(15) == 0
        assert time.monotonic() - sent < 15
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    logs = log_path.read_text()
    assert "stopped during start-up (migrating the database): nothing was served" in logs
    assert "Traceback" not in logs
