"""Comment on and escalate an incident over the API: a responder's two other writes.

The same rules as acknowledge and resolve: the authenticated principal acts, claiming another
actor needs ``impersonate``, text with control characters is a 422 naming the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.config import BallastConfig
from tests.conftest import REPO, Clock

ALERT = {
    "labels": {"alertname": "ToolFailing", "service": "svc-a", "tool": "search"},
    "starts_at": "2026-11-27T02:00:00Z",
}


@pytest.fixture
def runbooks_dir() -> Path:
    """svc/tool-failure: escalation notifies @oncall after 10 min, pages primary after 30."""
    return REPO / "tests" / "execution" / "runbooks"


@pytest.fixture
async def h(make_harness: Any) -> Any:
    config = BallastConfig.model_validate({"teams": {"@oncall": ["U0OWNER2", "U0OWNER3"]}})
    harness = await make_harness(config=config)
    response = await harness.client.post("/webhooks/generic", json={"alerts": [ALERT]})
    assert response.status_code == 200
    await harness.settle()
    return harness


def entries(detail: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e for e in detail["timeline"] if e["kind"] == kind]


async def test_a_comment_is_in_the_timeline_with_its_author(h: Any) -> None:
    response = await h.as_("owner2").post(
        "/api/v1/incidents/1/comments", json={"text": "rolled the gateway by hand <!channel>"}
    )
    assert response.status_code == 201, response.text
    [comment] = entries(response.json(), "comment")
    assert comment["actor"] == "U0OWNER2"
    assert comment["summary"] == "rolled the gateway by hand <!channel>"
    assert comment["details"]["auth"] == {
        "principal": "owner2",
        "method": "token",
        "person": "U0OWNER2",
    }


async def test_a_comment_on_a_resolved_incident_is_kept(h: Any) -> None:
    assert (await h.as_("owner2").post("/api/v1/incidents/1/resolve", json={})).status_code == 200
    response = await h.as_("owner3").post(
        "/api/v1/incidents/1/comments", json={"text": "cause: the search vendor's outage"}
    )
    assert response.status_code == 201
    assert [e["actor"] for e in entries(response.json(), "comment")] == ["U0OWNER3"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"text": "two\nlines"}, "text"),
        ({"text": "nul\u0000"}, "text"),
        ({"text": ""}, "text"),
        ({"text": "x" * 2001}, "text"),
        ({}, "text"),
        ({"text": "ok", "extra": 1}, "extra"),
    ],
)
async def test_bad_comments_are_refused_naming_the_field(
    h: Any, body: dict[str, Any], field: str
) -> None:
    response = await h.as_("owner2").post("/api/v1/incidents/1/comments", json=body)
    assert response.status_code == 422, response.text
    assert field in response.text
    detail = (await h.client.get("/api/v1/incidents/1")).json()
    assert entries(detail, "comment") == []


async def test_comment_rules_are_the_api_rules(h: Any) -> None:
    url = "/api/v1/incidents/1/comments"
    assert (await h.anonymous.post(url, json={"text": "hi"})).status_code == 401
    assert (await h.as_("reader").post(url, json={"text": "hi"})).status_code == 403
    claimed = await h.as_("owner2").post(url, json={"text": "hi", "actor": "U0OWNER3"})
    assert claimed.status_code == 403
    missing = await h.as_("owner2").post("/api/v1/incidents/99/comments", json={"text": "hi"})
    assert missing.status_code == 404


async def test_escalate_fires_the_next_step_then_says_none_is_left(h: Any, clock: Clock) -> None:
    url = "/api/v1/incidents/1/escalate"
    first = await h.as_("owner2").post(url, json={})
    assert first.status_code == 200, first.text
    assert first.json()["step"] == 1
    assert first.json()["summary"] == "notified @oncall"
    second = await h.as_("owner3").post(url, json={})
    assert second.status_code == 200
    assert second.json()["step"] == 2
    assert (await h.as_("owner2").post(url, json={})).status_code == 409
    detail = (await h.client.get("/api/v1/incidents/1")).json()
    escalated = entries(detail, "escalated")
    assert [e["actor"] for e in escalated] == ["U0OWNER2", "U0OWNER3"]
    assert escalated[0]["details"]["auth"]["principal"] == "owner2"
    # The steps fired early do not fire again when their timers come due.
    clock.advance(hours=1)
    await h.services.timers.tick()
    detail = (await h.client.get("/api/v1/incidents/1")).json()
    assert len(entries(detail, "escalated")) == 2


async def test_a_resolved_incident_is_not_escalated(h: Any) -> None:
    assert (await h.as_("owner2").post("/api/v1/incidents/1/resolve", json={})).status_code == 200
    response = await h.as_("owner2").post("/api/v1/incidents/1/escalate", json={})
    assert response.status_code == 409
    assert "resolved" in response.json()["detail"]
    detail = (await h.client.get("/api/v1/incidents/1")).json()
    assert entries(detail, "escalated") == []


async def test_escalate_needs_a_responder(h: Any) -> None:
    url = "/api/v1/incidents/1/escalate"
    assert (await h.anonymous.post(url, json={})).status_code == 401
    assert (await h.as_("reader").post(url, json={})).status_code == 403
    assert (await h.as_("owner2").post(url, json={"actor": "ballast"})).status_code == 403
