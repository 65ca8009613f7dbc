"""Leased executions over two real replicas on one PostgreSQL database.

The double-send sequence of issue 15: a replica SIGKILLed during a slow ``http_request``, then
both replicas restarted. Before leases every replica re-applied every ``running`` row at start,
and the gateway got two simultaneous re-sends and two ``mitigation_applied``. Now exactly one
replica takes the expired lease over: the gateway receives at most one re-send, with the same
``Idempotency-Key``, and the timeline has one ``mitigation_applied``. And while the replica
applying it lives (its heartbeats renew the lease), a restart of the other touches nothing.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import fresh_database_url
from tests.e2e.processes import BallastServer, wait_until
from tests.execution.test_crash_recovery import (
    AUTH,
    MITIGATION,
    OWNER,
    RUNBOOK,
    TOKEN,
    Target,
    applied_entries,
    mitigation_state,
    open_incident,
)
from tests.principals import roster_yaml

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

LEASE = 2  # seconds: execution.lease of both replicas


@pytest.fixture
def target() -> Iterator[Target]:
    with Target() as running:
        yield running


@pytest.fixture
def replicas(tmp_path: Path, target: Target) -> Iterator[tuple[BallastServer, BallastServer]]:
    runbooks = tmp_path / "runbooks"
    runbooks.mkdir()
    (runbooks / "lane-overload.yaml").write_text(
        RUNBOOK.format(owner=OWNER, mitigation=MITIGATION, url=target.url)
    )
    config = tmp_path / "ballast.yaml"
    config.write_text(
        f"http:\n  allowed_hosts: [127.0.0.1]\nexecution:\n  lease: {LEASE}s\n" + roster_yaml()
    )
    with fresh_database_url("postgres", tmp_path, "ballast_takeover") as url:
        env = {
            "BALLAST_DATABASE_URL": url,
            "BALLAST_RUNBOOKS": str(runbooks),
            "BALLAST_CONFIG": str(config),
            "BALLAST_API_TOKEN": TOKEN,
            "BALLAST_LOG_FORMAT": "json",
        }
        pair = (
            BallastServer(tmp_path, env, tmp_path / "a.log"),
            BallastServer(tmp_path, env, tmp_path / "b.log"),
        )
        try:
            yield pair
        finally:
            for server in pair:
                server.stop()


def start_run(server: BallastServer, incident: int) -> threading.Thread:
    def run() -> None:
        with contextlib.suppress(httpx.HTTPError):
            httpx.post(
                f"{server.url}/api/v1/incidents/{incident}/mitigations/{MITIGATION}/run",
                json={"actor": OWNER},
                headers=AUTH,
                timeout=30,
            )

    runner = threading.Thread(target=run, daemon=True)
    runner.start()
    return runner


def test_sigkill_mid_request_then_restarting_both_resends_at_most_once(
    replicas: tuple[BallastServer, BallastServer], target: Target
) -> None:
    a, b = replicas
    a.start()
    b.start()
    incident = open_incident(a)
    runner = start_run(a, incident)
    wait_until(lambda: target.count() == 1, 15, "the gateway to receive the mitigation")
    assert mitigation_state(b, incident) == "running"

    a.kill()
    runner.join(10)
    target.release()
    b.stop()
    a.start(timeout=60)
    b.start(timeout=60)  # both recover at start: only one may take the expired lease

    wait_until(lambda: mitigation_state(a, incident) == "applied", 30, "the takeover to apply it")
    time.sleep(3 * LEASE)  # time for a second (wrong) takeover to show itself
    first, *resent = target.seen()
    assert len(resent) == 1, target.seen()
    assert first["idempotency_key"]
    assert resent[0]["idempotency_key"] == first["idempotency_key"]
    (entry,) = applied_entries(b, incident)
    assert entry["details"]["idempotency_key"] == first["idempotency_key"]
    logs = a.logs() + b.logs()
    assert logs.count("taking over running of pause-lane") == 1, logs


def test_a_live_replica_keeps_its_execution_through_the_others_restart(
    replicas: tuple[BallastServer, BallastServer], target: Target
) -> None:
    a, b = replicas
    a.start()
    b.start()
    incident = open_incident(a)
    runner = start_run(a, incident)
    wait_until(lambda: target.count() == 1, 15, "the gateway to receive the mitigation")

    b.stop()
    b.start(timeout=60)  # a rolling restart of the other replica, mid-request
    time.sleep(3 * LEASE)  # a's heartbeats keep renewing the lease meanwhile
    assert target.count() == 1
    assert mitigation_state(b, incident) == "running"

    target.release()
    runner.join(20)
    wait_until(lambda: mitigation_state(b, incident) == "applied", 15, "a to record it")
    assert target.count() == 1
    assert len(applied_entries(a, incident)) == 1
    assert "taking over" not in a.logs() + b.logs()
