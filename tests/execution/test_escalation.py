"""Escalation steps fire on time while unacknowledged, once, across a restart."""

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
ALERT = {
    "labels": {"alertname": "ToolFailing", "service": "svc-b", "tool": "search"},
    "starts_at": "2026-11-27T02:00:00Z",
}


class PagerDuty:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.events.append(json.loads(request.content))
        return httpx.Response(202, json={"status": "success", "dedup_key": "x"})


@pytest.fixture
def pagerduty() -> PagerDuty:
    return PagerDuty()


@pytest.fixture
def start(make_harness: Any, pagerduty: PagerDuty) -> Any:
    config = BallastConfig.model_validate(
        {
            "teams": {"@oncall": ["U0OWNER2"]},
            "paging": {
                "primary": {
                    "type": "pagerduty",
                    "routing_key_env": "PD_KEY",
                    "api_url": "http://pagerduty.test",
                }
            },
        }
    )

    async def make() -> Any:
        return await make_harness(
            api_token="api-token",
            config=config,
            http_transport=httpx.MockTransport(pagerduty),
            environ={"PD_KEY": "routing-key-secret"},
        )

    return make


async def escalations(h: Any, incident: int) -> list[str]:
    body = (await h.client.get(f"/api/v1/incidents/{incident}")).json()
    return [e["summary"] for e in body["timeline"] if e["kind"] == "escalated"]


async def test_steps_fire_on_time_and_once_across_restart(
    start: Any, clock: Clock, pagerduty: PagerDuty, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    h = await start()
    assert (await h.client.post("/webhooks/generic", json={"alerts": [ALERT]})).status_code == 200
    await h.settle()
    incident = 1
    clock.advance(minutes=9)
    assert await h.services.timers.tick() == 0
    clock.advance(minutes=2)
    assert await h.services.timers.tick() == 1
    assert await escalations(h, incident) == ["Escalation step 1: notified @oncall"]
    assert any("would notify @oncall" in r.getMessage() for r in caplog.records)

    # A second process on the same database (a restart) fires nothing twice.
    again = await start()
    assert await again.services.timers.tick() == 0

    clock.advance(minutes=20)
    # step 2, disable-tool's undo_after 30m, and the first "still mitigating" reminder
    assert await again.services.timers.tick() == 3
    assert await escalations(again, incident) == [
        "Escalation step 1: notified @oncall",
        "Escalation step 2: paged primary",
    ]
    [event] = pagerduty.events
    assert event["routing_key"] == "routing-key-secret"
    assert event["event_action"] == "trigger"
    assert "has not been acknowledged for 31 min" in event["payload"]["summary"]


async def test_acknowledged_incident_does_not_escalate(
    start: Any, clock: Clock, pagerduty: PagerDuty
) -> None:
    h = await start()
    await h.client.post("/webhooks/generic", json={"alerts": [ALERT]})
    await h.settle()
    clock.advance(minutes=5)
    response = await h.client.post(
        "/api/v1/incidents/1/acknowledge", json={"actor": "U0OWNER2"}, headers=TOKEN
    )
    assert response.status_code == 200
    clock.advance(minutes=60)
    # both steps stand down; the auto-undo and the first reminder run
    assert await h.services.timers.tick() == 4
    assert await escalations(h, 1) == []
    assert pagerduty.events == []


async def test_reminders_while_mitigating_stop_at_resolve(start: Any, clock: Clock) -> None:
    h = await start()
    await h.client.post("/webhooks/generic", json={"alerts": [ALERT]})
    await h.settle()  # the auto mitigation applies: the incident is mitigating

    async def reminders() -> list[str]:
        body = (await h.client.get("/api/v1/incidents/1")).json()
        return [e["summary"] for e in body["timeline"] if e["kind"] == "reminder"]

    clock.advance(minutes=29)
    await h.services.timers.tick()
    assert await reminders() == []
    clock.advance(minutes=2)
    await h.services.timers.tick()
    [first] = await reminders()
    assert first.startswith("Reminder: #1 has been mitigating for 31 min")
    clock.advance(minutes=31)
    await h.services.timers.tick()
    assert len(await reminders()) == 2
    response = await h.client.post(
        "/api/v1/incidents/1/resolve", json={"actor": "U0OWNER2"}, headers=TOKEN
    )
    assert response.status_code == 200
    clock.advance(minutes=31)
    await h.services.timers.tick()
    assert len(await reminders()) == 2


async def test_escalate_now_counts_the_steps_of_the_current_opening(
    start: Any, clock: Clock
) -> None:
    """After a re-open, ``/ballast escalate`` walks the steps again from the first, once each."""
    h = await start()
    await h.client.post("/webhooks/generic", json={"alerts": [ALERT]})
    await h.settle()
    escalator = h.services.escalator
    assert (await escalator.escalate_now(1, "U0OWNER2")).startswith("#1 escalation step 1")
    resolved = await h.client.post(
        "/api/v1/incidents/1/resolve", json={"actor": "U0OWNER2"}, headers=TOKEN
    )
    assert resolved.status_code == 200
    clock.advance(minutes=3)
    refiring = {**ALERT, "starts_at": "2026-11-27T02:03:00Z"}
    await h.client.post("/webhooks/generic", json={"alerts": [refiring]})
    await h.settle()
    detail = (await h.client.get("/api/v1/incidents/1")).json()
    assert (detail["status"], detail["reopen_count"]) == ("triggered", 1)
    assert (await escalator.escalate_now(1, "U0OWNER2")).startswith("#1 escalation step 1")
    assert (await escalator.escalate_now(1, "U0OWNER2")).startswith("#1 escalation step 2")
    assert (await escalator.escalate_now(1, "U0OWNER2")).startswith("All 2 escalation steps")
