"""Every real payload in tests/fixtures/alerts goes through the HTTP endpoints.

Each test asserts the incidents that result, and that posting the same webhook again
(an Alertmanager retry, an HA twin, a repeat notification) leaves the state identical.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FIXTURES, Harness

AM = FIXTURES / "alertmanager-captured"


async def incidents(h: Harness) -> list[dict[str, Any]]:
    response = await h.client.get("/api/v1/incidents")
    assert response.status_code == 200
    return list(response.json()["incidents"])


async def snapshot(h: Harness) -> list[dict[str, Any]]:
    """Full state: every incident with its alerts and timeline."""
    out = []
    for summary in await incidents(h):
        detail = await h.client.get(f"/api/v1/incidents/{summary['id']}")
        out.append(detail.json())
    return out


async def post_twice(h: Harness, source: str, path: Path) -> None:
    first = await h.post_fixture(source, path)
    assert first.status_code == 200, first.text
    await h.settle()
    before = await snapshot(h)
    again = await h.post_fixture(source, path)
    assert again.status_code == 200, again.text
    assert again.json()["stored"] == 0
    assert again.json()["duplicates"] == first.json()["received"]
    await h.settle()
    assert await snapshot(h) == before


async def test_alertmanager_group_lifecycle(make_harness: Any) -> None:
    """New group → grouped update → one resolved inside a firing group → group resolved."""
    h = await make_harness()

    await post_twice(h, "alertmanager", AM / "firing-group-2-alerts.json")
    [incident] = await incidents(h)
    assert incident["runbook_id"] == "checkout/high-error-rate"
    assert incident["status"] == "triggered"
    assert incident["title"] == "Checkout errors high on checkout"
    assert incident["group_labels"] == {"alertname": "HighErrorRate", "service": "checkout"}
    assert (incident["alert_count"], incident["firing_count"]) == (2, 2)
    assert incident["severity"] == "sev2"
    assert incident["service"] == "checkout"

    await post_twice(h, "alertmanager", AM / "firing-group-update-3-alerts.json")
    [incident] = await incidents(h)
    assert (incident["alert_count"], incident["firing_count"]) == (3, 3)

    await post_twice(h, "alertmanager", AM / "firing-group-one-resolved.json")
    [incident] = await incidents(h)
    assert (incident["alert_count"], incident["firing_count"]) == (3, 2)
    assert incident["status"] == "triggered"

    await post_twice(h, "alertmanager", AM / "resolved-group.json")
    [incident] = await incidents(h)
    assert incident["status"] == "resolved"
    assert incident["firing_count"] == 0
    assert incident["resolved_at"] is not None
    assert incident["resolved_by"] == "alertmanager"

    detail = (await h.client.get(f"/api/v1/incidents/{incident['id']}")).json()
    kinds = [entry["kind"] for entry in detail["timeline"]]
    assert kinds == [
        "opened",
        "alert_firing",
        "alert_firing",
        "alert_firing",
        "alert_resolved",
        "alert_resolved",
        "alert_resolved",
        "resolved",
    ]
    assert {a["fingerprint"]: a["status"] for a in detail["alerts"]} == {
        "2f37b53748985404": "resolved",
        "d1ed38e55b38e745": "resolved",
        "7f70d69a70d4807e": "resolved",
    }
    assert "resolve" in detail["phases_seconds"]


async def test_truncated_alerts_are_not_resolved(make_harness: Any) -> None:
    h = await make_harness()
    response = await h.post_fixture("alertmanager", AM / "firing-truncated-max-alerts-3.json")
    assert response.json()["truncated_alerts"] == 7
    await h.settle()
    [incident] = await incidents(h)
    # No runbook matches TruncatedGroup: a triage incident, never dropped.
    assert incident["runbook_id"] is None
    assert incident["status"] == "triggered"
    assert (incident["alert_count"], incident["firing_count"]) == (3, 3)

    await post_twice(h, "alertmanager", AM / "firing-repeat-notification.json")
    [incident] = await incidents(h)
    assert incident["status"] == "triggered"
    assert (incident["alert_count"], incident["firing_count"]) == (3, 3)


async def test_prometheus_alert_fires_and_resolves(make_harness: Any) -> None:
    h = await make_harness()
    await post_twice(h, "alertmanager", AM / "prometheus-firing.json")
    [incident] = await incidents(h)
    assert incident["runbook_id"] == "support-assistant/low-groundedness"
    assert incident["title"] == "Groundedness low on support-assistant"
    assert incident["group_labels"] == {"service": "support-assistant"}

    detail = (await h.client.get(f"/api/v1/incidents/{incident['id']}")).json()
    previews = {m["id"]: m for m in detail["mitigations"]}
    assert previews["review-high-risk"]["risk"] == "low"
    assert previews["review-high-risk"]["preview"] == (
        "Set human review for support-assistant to high_risk (support-assistant.human_review)"
    )
    assert previews["lower-autonomy"]["mode"] == "approve"

    await post_twice(h, "alertmanager", AM / "prometheus-resolved.json")
    [incident] = await incidents(h)
    assert incident["status"] == "resolved"


async def test_storm_alert_without_runbook_opens_triage(make_harness: Any) -> None:
    h = await make_harness()
    await post_twice(h, "alertmanager", AM / "storm-single-alert-group.json")
    [incident] = await incidents(h)
    assert incident["runbook_id"] is None
    assert incident["severity"] == "triage"
    assert incident["title"] == "Untriaged alert: StormAlert0028"
    metrics = (await h.client.get("/metrics")).text
    assert "ballast_alerts_unmatched_total 1.0" in metrics


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        # Alertmanager's own test data: version "1", no alertname → a triage incident.
        ("am-exec-testdata-success.json", [("triggered", None, 1)]),
        # A resolved group with no alerts at all: nothing to do, nothing stored.
        ("am-exec-testdata-scope-resolved-empty.json", []),
        # Same labels, different fingerprints (hand-edited upstream): two alerts, one incident.
        ("zulip-alert-firing-2.json", [("triggered", None, 2)]),
    ],
)
async def test_alertmanager_other_payloads(
    make_harness: Any, name: str, expected: list[tuple[str, str | None, int]]
) -> None:
    h = await make_harness()
    await post_twice(h, "alertmanager", FIXTURES / "alertmanager" / name)
    got = [(i["status"], i["runbook_id"], i["alert_count"]) for i in await incidents(h)]
    assert got == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "docs-webhook-notifier-firing-2.json",
            # newest first: the triage incident for "High CPU usage" was opened second
            [("High CPU usage", None, 1), ("High memory usage", "platform/high-memory", 1)],
        ),
        ("zulip-alert-values-v11-firing.json", [("Memory (copy)", "platform/high-memory", 1)]),
        # Two resolved alerts never seen firing are ignored; the firing one opens triage.
        ("zulip-alert-9-mixed-firing-and-resolved.json", [("Second webhook test", None, 1)]),
        ("zulip-alert-9-resolved.json", []),
        ("real-resolved-8-alerts-grafana-folder.json", []),
    ],
)
async def test_grafana_payloads(
    make_harness: Any, name: str, expected: list[tuple[str, str | None, int]]
) -> None:
    h = await make_harness()
    await post_twice(h, "grafana", FIXTURES / "grafana" / name)
    got = [
        (i["group_labels"]["alertname"], i["runbook_id"], i["alert_count"])
        for i in await incidents(h)
    ]
    assert got == expected


async def test_grafana_legacy_payload_is_refused_and_nothing_stored(make_harness: Any) -> None:
    h = await make_harness()
    response = await h.post_fixture("grafana", FIXTURES / "grafana" / "zulip-legacy-alert-v7.json")
    assert response.status_code == 422
    assert "legacy" in response.json()["detail"].lower()
    await h.settle()
    assert await incidents(h) == []


PD = FIXTURES / "pagerduty"


async def test_pagerduty_incident_lifecycle(make_harness: Any, tmp_path: Path) -> None:
    """Triggered → acknowledged (ignored) → resolved → reopened, each delivered twice.

    The fixtures are three different PagerDuty incidents, so the later events of the
    triggered one are made from it by changing what PagerDuty changes: type, time, status.
    """
    h = await make_harness()
    await post_twice(h, "pagerduty", PD / "zulip-triggered-v3.json")
    [incident] = await incidents(h)
    assert incident["runbook_id"] is None
    assert incident["status"] == "triggered"
    assert incident["title"] == "Untriaged alert: Test Incident 3"
    assert incident["group_labels"] == {"alertname": "Test Incident 3", "service": "pig208"}

    triggered = json.loads((PD / "zulip-triggered-v3.json").read_text())

    def later(event_type: str, at: str, status: str) -> Path:
        body = json.loads(json.dumps(triggered))
        body["event"].update(event_type=event_type, occurred_at=at, id=f"{event_type}-{at}")
        body["event"]["data"]["status"] = status
        path = tmp_path / f"{event_type}-{at}.json"
        path.write_text(json.dumps(body))
        return path

    ack = later("incident.acknowledged", "2021-06-04T13:40:00Z", "acknowledged")
    answer = await h.post_fixture("pagerduty", ack)
    assert answer.status_code == 200
    assert answer.json()["received"] == 0
    assert answer.json()["ignored"].startswith("incident.acknowledged: ")
    await post_twice(h, "pagerduty", ack)
    [incident] = await incidents(h)
    assert incident["status"] == "triggered"

    await post_twice(h, "pagerduty", later("incident.resolved", "2021-06-04T13:50:00Z", "resolved"))
    [incident] = await incidents(h)
    assert incident["status"] == "resolved"
    assert incident["resolved_by"] == "pagerduty"

    await post_twice(
        h, "pagerduty", later("incident.reopened", "2021-06-04T14:00:00Z", "triggered")
    )
    listed = await incidents(h)
    assert [i["status"] for i in listed] == ["triggered"]  # the same incident, reopened
    detail = (await h.client.get(f"/api/v1/incidents/{listed[0]['id']}")).json()
    assert detail["alerts"][0]["fingerprint"] == "pagerduty:PFQZPSY"
    assert detail["alerts"][0]["status"] == "firing"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("zulip-triggered-v3.json", [("triggered", "Test Incident 3", 1)]),
        # An incident Ballast never saw firing: its resolve is stored and changes nothing.
        ("zulip-resolved-v3.json", []),
        ("zulip-acknowledged-v3.json", []),
    ],
)
async def test_pagerduty_payloads(
    make_harness: Any, name: str, expected: list[tuple[str, str, int]]
) -> None:
    h = await make_harness()
    await post_twice(h, "pagerduty", PD / name)
    got = [
        (i["status"], i["group_labels"]["alertname"], i["alert_count"]) for i in await incidents(h)
    ]
    assert got == expected


DD = FIXTURES / "datadog"


async def test_datadog_monitor_triggers_and_recovers(make_harness: Any, tmp_path: Path) -> None:
    """The two real notifications of one monitor group, in the order Datadog sent them: the
    recovery (07:11:17) ended an earlier cycle, the trigger (07:12:10) started a new one."""
    h = await make_harness()
    await post_twice(h, "datadog", DD / "fluffy-metric-alert-recovered.json")
    assert await incidents(h) == []  # a recovery of nothing Ballast saw firing

    await post_twice(h, "datadog", DD / "fluffy-metric-alert-triggered.json")
    [incident] = await incidents(h)
    assert incident["status"] == "triggered"
    assert incident["group_labels"] == {"alertname": "Dock is almost out of memory..."}
    detail = (await h.client.get(f"/api/v1/incidents/{incident['id']}")).json()
    assert detail["alerts"][0]["labels"]["role"] == "dock"

    # Delivered late, the older recovery does not end the newer trigger.
    await post_twice(h, "datadog", DD / "fluffy-metric-alert-recovered.json")
    [incident] = await incidents(h)
    assert incident["status"] == "triggered"

    # This cycle's recovery: the real one, dated after the trigger.
    recovered = json.loads((DD / "fluffy-metric-alert-recovered.json").read_text())
    recovered["date"] = "1448435830000"
    path = tmp_path / "recovered-later.json"
    path.write_text(json.dumps(recovered))
    await post_twice(h, "datadog", path)
    [incident] = await incidents(h)
    assert incident["status"] == "resolved"
    assert incident["resolved_by"] == "datadog"


async def test_datadog_default_template_opens_triage(make_harness: Any) -> None:
    h = await make_harness()
    await post_twice(h, "datadog", DD / "relay-default-payload-test-notification.json")
    got = [(i["status"], i["title"]) for i in await incidents(h)]
    assert got == [("triggered", "Untriaged alert: [TEST] Host Cluster Alert")]


OG = FIXTURES / "opsgenie"


async def test_opsgenie_alert_created_acknowledged_closed(
    make_harness: Any, tmp_path: Path
) -> None:
    """Create opens, Acknowledge and AddNote are answered with the reason they are ignored,
    Close resolves. The fixtures' Create and Close are of two alerts (2017 and 2015), so the
    Close of the created one is made from the real Close by giving it the created alert's
    identity and a time after it."""
    h = await make_harness()
    await post_twice(h, "opsgenie", OG / "zulip-create.json")
    [incident] = await incidents(h)
    assert incident["status"] == "triggered"
    assert incident["group_labels"] == {"alertname": "another alert", "service": "Server"}

    for name in ("zulip-acknowledge.json",):
        answer = await h.post_fixture("opsgenie", OG / name)
        assert answer.json()["ignored"].startswith("Acknowledge: ")
        await post_twice(h, "opsgenie", OG / name)
    note = json.loads((OG / "zulip-acknowledge.json").read_text())
    note["action"] = "AddNote"
    answer = await h.client.post("/webhooks/opsgenie", json=note)
    assert answer.status_code == 200
    assert answer.json() == {
        "received": 0,
        "stored": 0,
        "duplicates": 0,
        "truncated_alerts": 0,
        "ignored": "AddNote: notes made in Opsgenie stay there; add notes to the Ballast "
        "incident in Slack or the API",
    }

    create = json.loads((OG / "zulip-create.json").read_text())["alert"]
    close = json.loads((OG / "zulip-close.json").read_text())
    close["alert"].update(
        {key: create[key] for key in ("alertId", "message", "entity", "alias", "tinyId")}
    )
    close["alert"]["updatedAt"] = create["updatedAt"] + 60 * 10**9  # a minute after it
    path = tmp_path / "close-created.json"
    path.write_text(json.dumps(close))
    await post_twice(h, "opsgenie", path)
    [incident] = await incidents(h)
    assert incident["status"] == "resolved"
    assert incident["resolved_by"] == "opsgenie"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("zulip-create.json", [("triggered", "another alert", 1)]),
        ("zulip-close.json", []),  # never seen firing: nothing to resolve
        ("zulip-acknowledge.json", []),
    ],
)
async def test_opsgenie_payloads(
    make_harness: Any, name: str, expected: list[tuple[str, str, int]]
) -> None:
    h = await make_harness()
    await post_twice(h, "opsgenie", OG / name)
    got = [
        (i["status"], i["group_labels"]["alertname"], i["alert_count"]) for i in await incidents(h)
    ]
    assert got == expected
