"""The API acts as the authenticated principal: nobody can claim to be someone else.

The first test is the sequence of issue 13, which got a high-risk change approved by "two
people" with one token and undid it as "ballast": each step is now refused and nothing is
applied.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from bot.config import BallastConfig
from tests.principals import API_TOKEN

API = {"authorization": f"Bearer {API_TOKEN}"}
ALERT = {
    "labels": {"alertname": "ToolFailing", "service": "svc-a", "tool": "search"},
    "starts_at": "2026-11-27T02:00:00Z",
}


@pytest.fixture
async def h(make_harness: Any) -> Any:
    config = BallastConfig.model_validate({"teams": {"@oncall": ["U0OWNER2", "U0OWNER3"]}})
    harness = await make_harness(api_token=API_TOKEN, config=config)
    response = await harness.client.post("/webhooks/generic", json={"alerts": [ALERT]})
    assert response.status_code == 200
    await harness.settle()
    return harness


def path(verb: str, mitigation: str = "full-autonomy") -> str:
    return f"/api/v1/incidents/1/mitigations/{mitigation}/{verb}"


async def autonomy_state(h: Any) -> tuple[str, list[str]]:
    detail = (await h.client.get("/api/v1/incidents/1")).json()
    [m] = [m for m in detail["mitigations"] if m["id"] == "full-autonomy"]
    return m["state"], [t["kind"] for t in detail["timeline"]]


async def test_issue_13_impersonation_sequence_is_refused_at_each_step(h: Any) -> None:
    api = h.anonymous
    steps = [
        (path("run"), {"actor": "@oncall"}),  # a group handle as the first "owner"
        (path("run"), {"actor": "U0OWNER1"}),  # an owner's id as the second
        (path("undo", "disable-tool"), {"actor": "ballast"}),  # the system actor skips checks
        ("/api/v1/incidents/1/acknowledge", {"actor": "U0OWNER1"}),
        ("/api/v1/incidents/1/resolve", {"actor": "U0OWNER1"}),
    ]
    for url, body in steps:
        response = await api.post(url, json=body, headers=API)
        assert response.status_code == 403, (url, body, response.text)
        assert "may not act as" in response.json()["detail"]
    # Without a claimed actor the service acts, and a service is no owner.
    as_api = await api.post(path("run"), json={}, headers=API)
    assert as_api.status_code == 403
    assert "service principal" in as_api.json()["detail"]

    state, kinds = await autonomy_state(h)
    assert state == "not_run"
    assert "mitigation_requested" not in kinds
    assert kinds.count("mitigation_approved") == 1  # disable-tool, run by Ballast on open
    assert "mitigation_undone" not in kinds
    detail = (await h.client.get("/api/v1/incidents/1")).json()
    assert detail["status"] != "resolved"
    assert detail["acknowledged_by"] is None
    assert h.services.controls is not None
    assert await h.services.controls.get("svc-a.autonomy") is None


async def test_even_an_impersonator_cannot_claim_ballast_or_a_group(h: Any) -> None:
    bridge = h.as_("impersonator")
    for claimed in ("ballast", "@oncall", "<!subteam^S0ONCALL1>"):
        response = await bridge.post(path("undo", "disable-tool"), json={"actor": claimed})
        assert response.status_code == 403, (claimed, response.text)
    assert (await autonomy_state(h))[0] == "not_run"


async def test_two_tokens_of_one_person_are_one_approver(h: Any) -> None:
    first = await h.as_("owner1").post(path("run"), json={})
    assert first.status_code == 202, first.text
    assert first.json()["approvals"] == ["U0OWNER1"]
    again = await h.as_("owner1-ci").post(path("run"), json={})
    assert again.status_code == 403
    assert "two people" in again.json()["detail"]
    assert (await autonomy_state(h))[0] == "awaiting_approval"
    second = await h.as_("owner2").post(path("run"), json={"actor": "U0OWNER2"})  # own id: ok
    assert second.status_code == 200, second.text
    assert second.json()["state"] == "applied"
    assert second.json()["approvals"] == ["U0OWNER1", "U0OWNER2"]

    # The journal names the principal, its method and person for each step.
    timeline = (await h.client.get("/api/v1/incidents/1")).json()["timeline"]
    approved = [t for t in timeline if t["kind"] == "mitigation_approved"][-1]
    assert approved["actor"] == "U0OWNER2"
    assert approved["details"]["auth"] == {
        "principal": "owner2",
        "method": "token",
        "person": "U0OWNER2",
    }


async def test_impersonation_is_journaled_with_both_names(h: Any) -> None:
    response = await h.as_("impersonator").post(path("run"), json={"actor": "U0OWNER3"})
    assert response.status_code == 202, response.text
    timeline = (await h.client.get("/api/v1/incidents/1")).json()["timeline"]
    [requested] = [t for t in timeline if t["kind"] == "mitigation_requested"]
    assert requested["actor"] == "U0OWNER3"
    assert requested["details"]["auth"] == {
        "principal": "impersonator",
        "method": "token",
        "person": "U0OWNER3",
        "claimed_actor": "U0OWNER3",
    }


async def test_a_person_who_is_no_owner_is_refused_and_journaled(h: Any) -> None:
    response = await h.as_("stranger").post(path("run", "supervised"), json={})
    assert response.status_code == 403
    assert "U0STRANGER is not an owner" in response.json()["detail"]
    timeline = (await h.client.get("/api/v1/incidents/1")).json()["timeline"]
    [refused] = [t for t in timeline if t["kind"] == "mitigation_refused"]
    assert refused["details"]["auth"]["principal"] == "stranger"


async def test_acknowledge_records_the_principal(h: Any) -> None:
    acked = await h.as_("responder").post("/api/v1/incidents/1/acknowledge", json={})
    assert acked.status_code == 200
    assert acked.json()["acknowledged_by"] == "responder"
    [entry] = [t for t in acked.json()["timeline"] if t["kind"] == "acknowledged"]
    assert entry["details"]["auth"] == {"principal": "responder", "method": "token"}


async def test_every_route_but_health_needs_credentials(h: Any) -> None:
    """Generated from the app's own OpenAPI schema, so a new endpoint is covered the day it is
    added; the schema itself (served apart) is added by hand."""
    schema = (await h.as_("reader").get("/openapi.json")).json()
    open_paths = {"/healthz", "/readyz", "/slack/events"}  # Slack: signed, see test_slack_*
    calls = [("GET", "/openapi.json")]
    for route_path, operations in schema["paths"].items():
        if route_path in open_paths:
            continue
        calls += [(method.upper(), route_path) for method in operations]
    checked = 0
    for method, route_path in calls:
        url = route_path.replace("{incident_id}", "1").replace("{mitigation_id}", "supervised")
        url = url.replace("{key}", "svc-a.autonomy")
        response = await h.anonymous.request(method, url, json={})
        assert response.status_code == 401, (method, url, response.text)
        wrong = await h.anonymous.request(
            method, url, json={}, headers={"authorization": "Bearer nope"}
        )
        assert wrong.status_code == 401, (method, url)
        checked += 1
    # incidents, mitigations, postmortems, runbooks, controls, openapi, webhooks, OFREP, metrics
    assert checked >= 17
    assert (await h.anonymous.get("/healthz")).status_code == 200
    assert (await h.anonymous.get("/readyz")).status_code == 200
    metrics = (await h.as_("reader").get("/metrics")).text
    assert 'ballast_auth_failures_total{endpoint="/api/v1/incidents",reason="missing"}' in metrics
    assert (
        'ballast_auth_failures_total{endpoint="/api/v1/incidents",reason="unknown_token"}'
        in metrics
    )


async def test_openapi_is_for_readers(h: Any) -> None:
    assert (await h.anonymous.get("/openapi.json")).status_code == 401
    schema = (await h.as_("reader").get("/openapi.json")).json()
    assert "/api/v1/incidents" in schema["paths"]
    assert (await h.anonymous.get("/docs")).status_code == 404


async def test_no_way_in_configured_says_what_to_set(make_harness: Any) -> None:
    h = await make_harness()
    client = httpx.AsyncClient(transport=h.client._transport, base_url=h.client.base_url)
    h.services.auth.config = h.services.auth.config.model_copy(update={"tokens": []})
    response = await client.get("/api/v1/incidents")
    await client.aclose()
    assert response.status_code == 401
    assert "set BALLAST_API_TOKEN or add auth.tokens" in response.json()["detail"]
