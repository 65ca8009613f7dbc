"""Running and undoing mitigations through the API, with the policy a Slack click gets."""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import pytest

from bot.config import BallastConfig
from tests.conftest import Clock
from tests.principals import BRIDGE

TOKEN = BRIDGE.headers  # may name the acting person in the body
SECRET = "s3cr3t-control-token-value"


def alert(service: str = "svc-a", tool: str = "search", status: str = "firing") -> dict[str, Any]:
    return {
        "labels": {"alertname": "ToolFailing", "service": service, "tool": tool},
        "status": status,
        "starts_at": "2026-11-27T02:00:00Z",
    }


class ControlPlane:
    """The far side of http_request: records requests; scripted failures first."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.script: list[Any] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.script:
            step = self.script.pop(0)
            if isinstance(step, Exception):
                raise step
            return httpx.Response(step)
        return httpx.Response(200, json={"ok": True})


@pytest.fixture
def plane() -> ControlPlane:
    return ControlPlane()


@pytest.fixture
async def h(make_harness: Any, plane: ControlPlane) -> Any:
    config = BallastConfig.model_validate(
        {
            "teams": {"@oncall": ["U0OWNER2", "U0OWNER3"]},
            "http": {"allowed_hosts": ["control.test"], "allowed_secrets": ["CONTROL_TOKEN"]},
            "execution": {"retry_deadline": "5s", "max_attempts": 4},
        }
    )
    return await make_harness(
        api_token="api-token",
        config=config,
        http_transport=httpx.MockTransport(plane),
        environ={"CONTROL_TOKEN": SECRET},
        retry_backoff=0.0,
    )


async def open_incident(h: Any) -> int:
    response = await h.client.post("/webhooks/generic", json={"alerts": [alert()]})
    assert response.status_code == 200
    await h.settle()
    [incident] = (await h.client.get("/api/v1/incidents")).json()["incidents"]
    return int(incident["id"])


async def run(h: Any, incident: int, mitigation: str, actor: str, **extra: Any) -> httpx.Response:
    response: httpx.Response = await h.client.post(
        f"/api/v1/incidents/{incident}/mitigations/{mitigation}/run",
        json={"actor": actor, **extra},
        headers=TOKEN,
    )
    return response


async def undo(h: Any, incident: int, mitigation: str, actor: str) -> httpx.Response:
    response: httpx.Response = await h.client.post(
        f"/api/v1/incidents/{incident}/mitigations/{mitigation}/undo",
        json={"actor": actor},
        headers=TOKEN,
    )
    return response


async def control(h: Any, key: str) -> Any:
    return await h.services.contexts.backend_for("svc-a").read(key)


async def detail(h: Any, incident: int) -> dict[str, Any]:
    body: dict[str, Any] = (await h.client.get(f"/api/v1/incidents/{incident}")).json()
    return body


def mitigation_of(body: dict[str, Any], mitigation_id: str) -> dict[str, Any]:
    return next(m for m in body["mitigations"] if m["id"] == mitigation_id)


async def test_auto_mitigation_applies_at_open_and_undoes(h: Any, clock: Clock) -> None:
    incident = await open_incident(h)
    assert await control(h, "svc-a.tools.search.enabled") is False
    body = await detail(h, incident)
    assert body["status"] == "mitigating"
    disabled = mitigation_of(body, "disable-tool")
    assert disabled["state"] == "applied"
    assert (disabled["before"], disabled["after"]) == (None, False)
    applied = [e for e in body["timeline"] if e["kind"] == "mitigation_applied"]
    assert applied[0]["actor"] == "ballast"
    assert applied[0]["details"]["key"] == "svc-a.tools.search.enabled"

    response = await undo(h, incident, "disable-tool", "U0OWNER2")
    assert response.status_code == 200, response.text
    assert response.json()["state"] == "undone"
    # The switch did not exist before: undo removes it, so the app uses its own default.
    assert await control(h, "svc-a.tools.search.enabled") is None
    replay = await undo(h, incident, "disable-tool", "U0OWNER2")
    assert replay.json()["changed"] is False


async def test_undo_after_fires_once(h: Any, clock: Clock) -> None:
    incident = await open_incident(h)
    clock.advance(minutes=29)
    await h.services.timers.tick()  # escalation step 1 (10m) only
    assert await control(h, "svc-a.tools.search.enabled") is False
    clock.advance(minutes=2)
    await h.services.timers.tick()  # the undo_after 30m (and escalation step 2)
    assert await h.services.timers.tick() == 0
    assert await control(h, "svc-a.tools.search.enabled") is None
    body = await detail(h, incident)
    undone = [e for e in body["timeline"] if e["kind"] == "mitigation_undone"]
    assert [e["actor"] for e in undone] == ["ballast"]


async def test_non_owner_is_refused_and_recorded(h: Any) -> None:
    incident = await open_incident(h)
    response = await run(h, incident, "supervised", "U0STRANGER")
    assert response.status_code == 403
    assert "not an owner" in response.json()["detail"]
    assert await control(h, "svc-a.autonomy") is None
    refused = [
        e for e in (await detail(h, incident))["timeline"] if e["kind"] == "mitigation_refused"
    ]
    assert refused[0]["actor"] == "U0STRANGER"


async def test_owner_through_group_applies_medium_risk(h: Any) -> None:
    incident = await open_incident(h)
    response = await run(h, incident, "supervised", "U0OWNER3")  # member of @oncall
    assert response.status_code == 200, response.text
    assert response.json()["state"] == "applied"
    assert await control(h, "svc-a.autonomy") == "supervised"


async def test_high_risk_needs_two_different_owners(h: Any) -> None:
    incident = await open_incident(h)
    first = await run(h, incident, "full-autonomy", "U0OWNER1")
    assert first.status_code == 202
    assert first.json()["risk"] == "high"
    assert first.json()["approvals_needed"] == 2
    same = await run(h, incident, "full-autonomy", "U0OWNER1")
    assert same.status_code == 403
    assert "two people" in same.json()["detail"]
    assert await control(h, "svc-a.autonomy") is None

    second = await run(h, incident, "full-autonomy", "U0OWNER2")
    assert second.status_code == 200
    assert second.json()["state"] == "applied"
    assert second.json()["approvals"] == ["U0OWNER1", "U0OWNER2"]
    assert await control(h, "svc-a.autonomy") == "full"

    replayed = await run(h, incident, "full-autonomy", "U0OWNER2")
    assert replayed.json()["changed"] is False
    body = await detail(h, incident)
    assert (
        len(
            [
                e
                for e in body["timeline"]
                if e["kind"] == "mitigation_applied"
                and e["details"]["mitigation_id"] == "full-autonomy"
            ]
        )
        == 1
    )
    entry = mitigation_of(body, "full-autonomy")
    assert (entry["requested_by"], entry["approvals"]) == ("U0OWNER1", ["U0OWNER1", "U0OWNER2"])


async def test_timeouts_are_retried_then_applied_once(h: Any, plane: ControlPlane) -> None:
    incident = await open_incident(h)
    plane.script = [httpx.ReadTimeout("slow"), httpx.ReadTimeout("slow"), 200]
    response = await run(h, incident, "pause-batch", "U0OWNER1")
    assert response.status_code == 200, response.text
    assert response.json()["state"] == "applied"
    assert response.json()["attempts"] == 3
    assert len(plane.requests) == 3
    keys = {r.headers["idempotency-key"] for r in plane.requests}
    assert len(keys) == 1  # one execution, one key, however many attempts
    assert plane.requests[0].headers["authorization"] == f"Bearer {SECRET}"
    assert json.loads(plane.requests[0].content) == {"reason": "ToolFailing"}

    assert (await run(h, incident, "pause-batch", "U0OWNER1")).json()["changed"] is False
    assert len(plane.requests) == 3

    response = await undo(h, incident, "pause-batch", "U0OWNER1")
    assert response.json()["state"] == "undone"
    assert plane.requests[-1].url.path == "/lanes/svc-a/resume"


async def test_4xx_is_not_retried_and_failure_is_recorded(
    h: Any, plane: ControlPlane, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    incident = await open_incident(h)
    plane.script = [400]
    response = await run(h, incident, "pause-batch", "U0OWNER1")
    assert response.status_code == 200
    assert response.json()["state"] == "failed"
    assert len(plane.requests) == 1
    body = await detail(h, incident)
    failed = [e for e in body["timeline"] if e["kind"] == "mitigation_failed"]
    assert "answered 400" in failed[0]["summary"]
    assert mitigation_of(body, "pause-batch")["state"] == "failed"
    # The owners were told (console messenger without Slack).
    assert any("failed on incident" in r.getMessage() for r in caplog.records)
    # It may be run again after a failure.
    again = await run(h, incident, "pause-batch", "U0OWNER1")
    assert again.json()["state"] == "applied"
    everything = caplog.text + json.dumps(body)
    assert SECRET not in everything


async def test_5xx_until_deadline_fails(h: Any, plane: ControlPlane) -> None:
    incident = await open_incident(h)
    plane.script = [503, 503, 503, 503, 503]
    response = await run(h, incident, "pause-batch", "U0OWNER1")
    assert response.json()["state"] == "failed"
    assert len(plane.requests) == 4  # max_attempts
    assert "gave up after 4 attempt(s)" in response.json()["message"]


async def test_host_not_allowed_is_final(h: Any, plane: ControlPlane) -> None:
    incident = await open_incident(h)
    response = await run(h, incident, "call-vendor", "U0OWNER1")
    assert response.json()["state"] == "failed"
    assert "vendor.test" in response.json()["message"]
    assert plane.requests == []


async def test_dry_run_changes_nothing(h: Any) -> None:
    incident = await open_incident(h)
    response = await run(h, incident, "supervised", "U0OWNER1", dry_run=True)
    assert response.status_code == 200
    assert response.json()["state"] == "dry_run"
    assert "would set svc-a.autonomy" in response.json()["message"]
    assert await control(h, "svc-a.autonomy") is None
    kinds = [e["kind"] for e in (await detail(h, incident))["timeline"]]
    assert "mitigation_dry_run" in kinds


async def test_manual_mitigation_is_recorded_not_executed(h: Any) -> None:
    incident = await open_incident(h)
    response = await run(h, incident, "check-provider", "U0OWNER1")
    assert response.json()["state"] == "done_manually"
    assert mitigation_of(await detail(h, incident), "check-provider")["state"] == "not_run"


async def test_unknown_mitigation_and_resolved_incident(h: Any) -> None:
    incident = await open_incident(h)
    missing = await run(h, incident, "nope", "U0OWNER1")
    assert missing.status_code == 404
    assert "disable-tool" in missing.json()["detail"]
    await h.client.post(
        f"/api/v1/incidents/{incident}/resolve", json={"actor": "U0OWNER1"}, headers=TOKEN
    )
    late = await run(h, incident, "supervised", "U0OWNER1")
    assert late.status_code == 409
    no_token = await h.anonymous.post(
        f"/api/v1/incidents/{incident}/mitigations/supervised/run", json={"actor": "U0OWNER1"}
    )
    assert no_token.status_code == 401
