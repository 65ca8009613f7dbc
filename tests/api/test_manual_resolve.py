"""Resolved by hand, then Alertmanager's resolve: the alert's state and counts still follow.

Through the HTTP endpoints, on SQLite and (with BALLAST_TEST_POSTGRES_URL) PostgreSQL.
"""

from __future__ import annotations

import json
from typing import Any

from tests.conftest import Clock
from tests.principals import BRIDGE

TOKEN = BRIDGE.headers  # may name the acting person in the body
STARTS = "2026-11-27T02:00:00Z"


def notification(*alerts: tuple[str, str, str]) -> bytes:
    """An Alertmanager v4 body; each alert is (fingerprint, instance, status)."""
    body = {
        "version": "4",
        "status": "firing",
        "receiver": "ballast",
        "groupKey": '{}:{alertname="LowGroundedness"}',
        "alerts": [
            {
                "status": status,
                "labels": {
                    "alertname": "LowGroundedness",
                    "service": "support-assistant",
                    "instance": instance,
                },
                "annotations": {},
                "startsAt": STARTS,
                "endsAt": "2026-11-27T02:09:00Z"
                if status == "resolved"
                else "0001-01-01T00:00:00Z",
                "fingerprint": fingerprint,
            }
            for fingerprint, instance, status in alerts
        ],
    }
    return json.dumps(body).encode()


async def send(h: Any, *alerts: tuple[str, str, str]) -> None:
    response = await h.client.post(
        "/webhooks/alertmanager",
        content=notification(*alerts),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 200, response.text
    await h.settle()


def outcome_count(metrics: str, outcome: str) -> float:
    prefix = f'ballast_alerts_processed_total{{outcome="{outcome}"}} '
    values = [
        float(line[len(prefix) :]) for line in metrics.splitlines() if line.startswith(prefix)
    ]
    return sum(values)


async def test_resolve_after_manual_resolve_updates_the_alert_and_counts(
    make_harness: Any, clock: Clock
) -> None:
    h = await make_harness(api_token="api-token-1")
    await send(h, ("fp-1", "pod-1", "firing"), ("fp-2", "pod-2", "firing"))
    [summary] = (await h.client.get("/api/v1/incidents")).json()["incidents"]
    url = f"/api/v1/incidents/{summary['id']}"
    assert (summary["alert_count"], summary["firing_count"]) == (2, 2)

    clock.advance(minutes=2)
    resolved = await h.client.post(f"{url}/resolve", json={"actor": "U024BE7LH"}, headers=TOKEN)
    assert resolved.status_code == 200
    assert resolved.json()["status"] == "resolved"
    resolved_at = resolved.json()["resolved_at"]

    clock.advance(minutes=5)
    await send(h, ("fp-1", "pod-1", "resolved"), ("fp-2", "pod-2", "firing"))
    detail = (await h.client.get(url)).json()
    assert (detail["status"], detail["alert_count"], detail["firing_count"]) == ("resolved", 2, 1)
    assert {a["fingerprint"]: a["status"] for a in detail["alerts"]} == {
        "fp-1": "resolved",
        "fp-2": "firing",
    }
    # Still resolved, by the person, at the same time; not re-opened.
    assert detail["resolved_by"] == "U024BE7LH"
    assert detail["resolved_at"] == resolved_at
    assert detail["reopen_count"] == 0
    last = detail["timeline"][-1]
    assert (last["kind"], last["actor"], last["details"]["fingerprint"]) == (
        "alert_resolved",
        "alertmanager",
        "fp-1",
    )

    clock.advance(minutes=1)
    await send(h, ("fp-2", "pod-2", "resolved"))
    [listed] = (await h.client.get("/api/v1/incidents")).json()["incidents"]
    assert (listed["status"], listed["alert_count"], listed["firing_count"]) == ("resolved", 2, 0)
    kinds = [e["kind"] for e in (await h.client.get(url)).json()["timeline"]]
    assert kinds.count("resolved") == 1  # the one resolve by hand; no second resolve
    assert "reopened" not in kinds

    # An Alertmanager HA pair resends the same resolve: stored once, nothing moves.
    await send(h, ("fp-2", "pod-2", "resolved"))
    assert (await h.client.get(url)).json()["firing_count"] == 0


async def test_resolve_of_an_alert_no_incident_held_is_dropped(make_harness: Any) -> None:
    h = await make_harness(api_token="api-token-1")
    await send(h, ("fp-1", "pod-1", "firing"))
    [summary] = (await h.client.get("/api/v1/incidents")).json()["incidents"]
    url = f"/api/v1/incidents/{summary['id']}"
    assert (await h.client.post(f"{url}/resolve", json={"actor": "U1"}, headers=TOKEN)).is_success

    # Same runbook and group, but an alert the incident never held.
    await send(h, ("fp-other", "pod-9", "resolved"))
    detail = (await h.client.get(url)).json()
    assert (detail["alert_count"], detail["firing_count"]) == (1, 1)
    assert [a["fingerprint"] for a in detail["alerts"]] == ["fp-1"]
    assert len((await h.client.get("/api/v1/incidents")).json()["incidents"]) == 1
    metrics = (await h.client.get("/metrics")).text
    assert outcome_count(metrics, "resolved_without_incident") == 1
