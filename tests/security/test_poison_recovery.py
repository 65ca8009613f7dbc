"""A poison alert fails its execution, journaled; it never crashes the server or its start-up.

Issue 14: a label ``note="café ☃"`` rendered into a header raised ``UnicodeEncodeError`` in
httpx, the execution stayed ``running``, and on restart ``recover()`` raised again:
``Application startup failed. Exiting.`` Now any exception an action raises is a journaled
failure, and recovery is guarded per execution. Checked in-process (an action that raises
something unexpected) and with a real ``ballast serve`` restarted over poisoned rows.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.config import BallastConfig
from bot.execution.results import ExecutionState
from bot.settings import Settings
from bot.store import executions as store
from bot.store.database import Database
from tests.backends.conftest import RecordingServer
from tests.conftest import fresh_database_url
from tests.e2e.processes import BallastServer, wait_until
from tests.principals import BRIDGE, roster_yaml

TOKEN = "api-token-poison"
AUTH = BRIDGE.headers  # may name the acting person in the body
RUNBOOK = """\
id: svc/lane-overload
title: "lane overloaded on {{{{ labels.service }}}}"
service: svc
severity: sev2
owners: ["U0OWNER1"]
match: ['alertname="LaneOverload"']
group_by: [service]
symptom: The batch lane is overloaded.
business_impact: Answers are late.
mitigations:
  - id: pause-lane
    title: Pause the batch lane
    action: http_request
    params:
      method: POST
      url: "{url}/lanes/{{{{ labels.service }}}}/pause"
      headers: {{X-Note: "{{{{ labels.note | default('none') }}}}"}}
      risk: low
    mode: {mode}
  - id: drain-lane
    title: Drain the batch lane
    action: http_request
    params: {{method: POST, url: "{url}/lanes/{{{{ labels.service }}}}/drain", risk: low}}
    mode: approve
  - id: resume-lane
    title: Resume the batch lane
    action: http_request
    params: {{method: POST, url: "{url}/lanes/{{{{ labels.service }}}}/resume", risk: low}}
    mode: approve
"""


def _failing_transport(request: httpx.Request) -> httpx.Response:
    raise UnicodeEncodeError("ascii", "café", 3, 4, "ordinal not in range(128)")


async def test_an_unexpected_exception_is_a_journaled_failure(
    make_harness: Any, tmp_path: Path
) -> None:
    folder = tmp_path / "runbooks"
    folder.mkdir()
    (folder / "lane.yaml").write_text(RUNBOOK.format(url="http://gw.test", mode="auto"))
    h = await make_harness(
        config=BallastConfig.model_validate({"http": {"allowed_hosts": ["gw.test"]}}),
        runbooks=folder,
        api_token=TOKEN,
        http_transport=httpx.MockTransport(_failing_transport),
    )
    alert = {"labels": {"alertname": "LaneOverload", "service": "svc-a"}}
    assert (await h.client.post("/webhooks/generic", json={"alerts": [alert]})).is_success
    await h.settle()
    incident = (await h.client.get("/api/v1/incidents/1", headers=AUTH)).json()
    [row] = [m for m in incident["mitigations"] if m["id"] == "pause-lane"]
    assert row["state"] == "failed"
    assert "UnicodeEncodeError" in row["error"]
    assert "café" not in row["error"], "the exception's text (it may quote a header) was kept"
    failed = [e for e in incident["timeline"] if e["kind"] == "mitigation_failed"]
    assert len(failed) == 1
    # A dry run of the same action answers 409 naming the failure, not a 500.
    dry = await h.client.post(
        "/api/v1/incidents/1/mitigations/drain-lane/run",
        json={"actor": "U0OWNER1", "dry_run": True},
        headers=AUTH,
    )
    assert dry.status_code in (200, 409), dry.text


# ---- a real server restarted over poisoned rows ---------------------------------------


@pytest.fixture
def gateway() -> Iterator[RecordingServer]:
    with RecordingServer() as server:
        yield server


@pytest.fixture
def server_database_url(database_kind: str, tmp_path: Path) -> Iterator[str]:
    with fresh_database_url(database_kind, tmp_path, "ballast_poison") as url:
        yield url


@pytest.fixture
def server(
    tmp_path: Path, server_database_url: str, gateway: RecordingServer
) -> Iterator[BallastServer]:
    runbooks = tmp_path / "runbooks"
    runbooks.mkdir()
    (runbooks / "lane.yaml").write_text(RUNBOOK.format(url=gateway.url, mode="approve"))
    config = tmp_path / "ballast.yaml"
    config.write_text("http:\n  allowed_hosts: [127.0.0.1]\n" + roster_yaml())
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


async def _leave_running(url: str, incident_id: int, rows: dict[str, dict[str, Any]]) -> None:
    """What a crash mid-apply leaves behind: executions ``running``, with these params."""
    db = Database(Settings(database_url=url).async_database_url)
    try:
        async with db.transaction() as session:
            for mitigation_id, params in rows.items():
                execution = store.new_generation(
                    incident_id=incident_id,
                    mitigation_id=mitigation_id,
                    previous=None,
                    action="http_request",
                    params=params,
                    risk="low",
                    state=ExecutionState.RUNNING.value,
                    requested_by="U0OWNER1",
                    now=datetime.now(UTC),
                )
                await store.insert_generation(session, execution)
    finally:
        await db.close()


def _detail(server: BallastServer, incident: int) -> dict[str, Any]:
    response = httpx.get(f"{server.url}/api/v1/incidents/{incident}", headers=AUTH, timeout=10)
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


@pytest.mark.slow
def test_restart_over_poisoned_rows_starts_and_journals_them(
    server: BallastServer, server_database_url: str, gateway: RecordingServer
) -> None:
    server.start(timeout=60)
    alert = {"labels": {"alertname": "LaneOverload", "service": "svc-a"}}
    response = httpx.post(
        f"{server.url}/webhooks/generic", json={"alerts": [alert]}, headers=AUTH, timeout=5
    )
    assert response.status_code == 200, response.text
    wait_until(
        lambda: httpx.get(f"{server.url}/api/v1/incidents", headers=AUTH, timeout=5).json()[
            "incidents"
        ],
        15,
        "the incident",
    )
    server.stop()

    url = f"{gateway.url}/lanes/svc-a"
    asyncio.run(
        _leave_running(
            server_database_url,
            1,
            {
                # The poison: the rendered header httpx could not encode.
                "pause-lane": {"url": f"{url}/pause", "headers": {"X-Note": "café ☃"}},
                # Params that no longer parse (the action's model changed since).
                "drain-lane": {"url": f"{url}/drain", "no_such_param": True},
                # A good one: recovered as before, whatever happened to the others.
                "resume-lane": {"url": f"{url}/resume", "risk": "low"},
            },
        )
    )

    server.start(timeout=60)  # recover() runs before /readyz answers
    states = {m["id"]: m for m in _detail(server, 1)["mitigations"]}
    assert states["pause-lane"]["state"] == "failed"
    assert "X-Note" in states["pause-lane"]["error"]
    assert states["drain-lane"]["state"] == "failed"
    assert "after a restart" in states["drain-lane"]["error"]
    assert states["resume-lane"]["state"] == "applied"
    assert [r.path for r in gateway.requests] == ["/lanes/svc-a/resume"]
    failed = [e for e in _detail(server, 1)["timeline"] if e["kind"] == "mitigation_failed"]
    assert {e["details"]["mitigation_id"] for e in failed} == {"pause-lane", "drain-lane"}

    server.stop()
    server.start(timeout=60)  # nothing left running: starts, sends nothing
    assert [r.path for r in gateway.requests] == ["/lanes/svc-a/resume"]
    assert "Application startup failed" not in server.logs()
