"""HTTP behaviour of the webhooks: auth, limits, bad input, and nothing half-stored."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.intake import AlertSource, parse_payload
from tests.conftest import FIXTURES

AM = FIXTURES / "alertmanager-captured"


async def stored_alert_count(h: Any) -> int:
    from sqlalchemy import func, select

    from bot.store.tables import InboxAlert

    async with h.services.db.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(InboxAlert)) or 0)


async def test_token_required_when_configured(make_harness: Any) -> None:
    h = await make_harness(webhook_token="s3cret-token")
    body = (AM / "firing-group-2-alerts.json").read_bytes()
    for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": "s3cret-token"}):
        response = await h.anonymous.post("/webhooks/alertmanager", content=body, headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert "s3cret-token" not in response.text
    assert await stored_alert_count(h) == 0
    ok = await h.client.post(
        "/webhooks/alertmanager", content=body, headers={"authorization": "Bearer s3cret-token"}
    )
    assert ok.status_code == 200
    assert ok.json() == {"received": 2, "stored": 2, "duplicates": 0, "truncated_alerts": 0}


async def test_alertmanager_request_headers_fixture_is_accepted(make_harness: Any) -> None:
    """The exact headers a real Alertmanager 0.25 sent, bearer token included."""
    sent = json.loads((AM / "request-headers.json").read_text())
    token = sent["Authorization"].removeprefix("Bearer ")
    h = await make_harness(webhook_token=token)
    headers = {k: v for k, v in sent.items() if k.lower() not in ("host", "content-length")}
    response = await h.client.post(
        "/webhooks/alertmanager",
        content=(AM / "prometheus-firing.json").read_bytes(),
        headers=headers,
    )
    assert response.status_code == 200


async def test_body_over_limit_is_413_and_not_stored(make_harness: Any) -> None:
    h = await make_harness(max_body_bytes=1024)
    body = (AM / "firing-group-update-3-alerts.json").read_bytes()
    assert len(body) > 1024
    response = await h.client.post("/webhooks/alertmanager", content=body)
    assert response.status_code == 413
    assert "1024 bytes" in response.json()["detail"]

    async def chunks() -> Any:
        # No Content-Length: the limit must hold while streaming too.
        for i in range(0, len(body), 100):
            yield body[i : i + 100]

    streamed = await h.client.post("/webhooks/alertmanager", content=chunks())
    assert streamed.status_code == 413
    assert await stored_alert_count(h) == 0


async def test_malformed_json_is_400_with_position(make_harness: Any) -> None:
    h = await make_harness()
    response = await h.client.post("/webhooks/alertmanager", content=b'{"alerts": [1,,]}')
    assert response.status_code == 400
    assert "line 1" in response.json()["detail"]
    assert await stored_alert_count(h) == 0


async def test_invalid_alert_in_batch_stores_nothing(make_harness: Any) -> None:
    """One bad alert in a batch of three: 422 naming it, and the two good ones not stored."""
    h = await make_harness()
    payload = json.loads((AM / "firing-group-update-3-alerts.json").read_text())
    payload["alerts"][2]["startsAt"] = "yesterday"
    response = await h.client.post("/webhooks/alertmanager", json=payload)
    assert response.status_code == 422
    assert response.json()["field"] == "alerts[2].startsAt"
    assert await stored_alert_count(h) == 0


@pytest.mark.parametrize("count", [2**31, 10**30])
async def test_truncated_alerts_beyond_a_database_integer_is_422(
    make_harness: Any, count: int
) -> None:
    """A count no database column holds is the sender's error (422), not a 5xx to retry."""
    h = await make_harness()
    payload = json.loads((AM / "firing-group-2-alerts.json").read_text())
    payload["truncatedAlerts"] = count
    response = await h.client.post("/webhooks/alertmanager", json=payload)
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "truncatedAlerts"
    # Beyond 64 bits the number reads as a float (see parse_json_bytes): refused either way.
    expected = "2147483647" if count < 2**63 else "expected an integer"
    assert expected in response.json()["detail"]
    assert await stored_alert_count(h) == 0
    payload["truncatedAlerts"] = 2**31 - 1
    accepted = await h.client.post("/webhooks/alertmanager", json=payload)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["truncated_alerts"] == 2**31 - 1


@pytest.mark.parametrize(
    ("place", "field"),
    [
        ("fingerprint", "fingerprint"),
        ("generatorURL", "generatorURL"),
        ("label value", "labels.team"),
        ("label name", "labels name"),
        ("annotation", "annotations.summary"),
    ],
)
async def test_nul_character_is_replaced_and_recorded(
    make_harness: Any, place: str, field: str
) -> None:
    """PostgreSQL cannot store U+0000 in text, and Alertmanager drops a group answered 4xx: the
    character becomes U+FFFD, the alert says so, and it is stored on every database."""
    h = await make_harness()
    payload = json.loads((AM / "firing-group-2-alerts.json").read_text())
    payload["groupKey"] = '{}:{alertname="x\u0000"}'
    alert = payload["alerts"][0]
    if place == "label value":
        alert["labels"]["team"] = "ml\u0000ops"
    elif place == "label name":
        alert["labels"]["te\u0000am"] = "mlops"
    elif place == "annotation":
        alert["annotations"]["summary"] = "bad\u0000"
    else:
        alert[place] = "abc\u0000"
    response = await h.client.post("/webhooks/alertmanager", json=payload)
    assert response.status_code == 200, response.text
    assert response.json()["stored"] == 2
    assert await stored_alert_count(h) == 2
    batch = parse_payload(AlertSource.ALERTMANAGER, payload)
    note = batch.alerts[0].annotations["ballast_intake"]
    assert note.startswith(f"altered at intake: {field}")
    assert "U+FFFD" in note
    assert "\x00" not in json.dumps(batch.alerts[0].labels, ensure_ascii=False)


async def test_escaped_backslash_before_u0000_is_plain_text(make_harness: Any) -> None:
    h = await make_harness()
    payload = json.loads((AM / "firing-group-2-alerts.json").read_text())
    payload["alerts"][0]["annotations"]["summary"] = "literally \\u0000"
    response = await h.client.post("/webhooks/alertmanager", json=payload)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "source", ["alertmanager", "grafana", "generic", "pagerduty", "datadog", "opsgenie"]
)
async def test_non_object_bodies_are_rejected(make_harness: Any, source: str) -> None:
    h = await make_harness()
    for body in (b"[]", b"42", b'"x"', b"null"):
        response = await h.client.post(f"/webhooks/{source}", content=body)
        assert response.status_code == 422, (source, body, response.text)
        assert response.json()["detail"]
    assert await stored_alert_count(h) == 0


async def test_generic_webhook_opens_and_resolves(make_harness: Any) -> None:
    h = await make_harness()
    alert = {
        "labels": {"alertname": "LowGroundedness", "service": "support-assistant"},
        "annotations": {"summary": "groundedness 0.41"},
        "status": "firing",
        "starts_at": "2026-11-27T02:00:00Z",
    }
    response = await h.client.post("/webhooks/generic", json={"alerts": [alert]})
    assert response.status_code == 200, response.text
    await h.settle()
    [incident] = (await h.client.get("/api/v1/incidents")).json()["incidents"]
    assert incident["runbook_id"] == "support-assistant/low-groundedness"
    resolved = dict(alert, status="resolved", ends_at="2026-11-27T02:10:00Z")
    assert (
        await h.client.post("/webhooks/generic", json={"alerts": [resolved]})
    ).status_code == 200
    await h.settle()
    [incident] = (await h.client.get("/api/v1/incidents")).json()["incidents"]
    assert incident["status"] == "resolved"


async def test_metrics_count_webhooks(make_harness: Any) -> None:
    h = await make_harness()
    await h.post_fixture("alertmanager", AM / "firing-group-2-alerts.json")
    await h.post_fixture("alertmanager", AM / "firing-group-2-alerts.json")
    await h.client.post("/webhooks/alertmanager", content=b"{")
    await h.settle()
    text = (await h.client.get("/metrics")).text
    assert 'ballast_alerts_received_total{result="stored",source="alertmanager"} 2.0' in text
    assert 'ballast_alerts_received_total{result="duplicate",source="alertmanager"} 2.0' in text
    assert 'ballast_webhook_requests_total{code="400",source="alertmanager"} 1.0' in text
    assert 'ballast_incidents{state="triggered"} 1.0' in text
    assert "ballast_inbox_lag_seconds 0.0" in text
    assert "ballast_webhook_duration_seconds_bucket" in text


PD_TRIGGERED = FIXTURES / "pagerduty" / "zulip-triggered-v3.json"
PD_SECRET = "pd-subscription-secret"


async def test_pagerduty_signature_is_required_when_its_secret_is_set(make_harness: Any) -> None:
    """Unsigned and wrongly signed deliveries get 403 and store nothing; during a rotation
    (two signatures, one made with the configured secret) the delivery is taken."""
    from bot.intake.pagerduty import sign

    h = await make_harness(webhook_token="wh-token", pagerduty_webhook_secret=PD_SECRET)
    body = PD_TRIGGERED.read_bytes()
    token = {"authorization": "Bearer wh-token", "content-type": "application/json"}
    other = sign(body, "the-old-secret")
    for signature in (None, "", other, sign(body + b"\n", PD_SECRET), "sha256=abc"):
        headers = (
            dict(token) if signature is None else {**token, "x-pagerduty-signature": signature}
        )
        response = await h.anonymous.post("/webhooks/pagerduty", content=body, headers=headers)
        assert response.status_code == 403, (signature, response.text)
        assert "X-PagerDuty-Signature" in response.json()["detail"]
        assert PD_SECRET not in response.text
    assert await stored_alert_count(h) == 0

    # A right signature does not replace Ballast's own token: 401 without it.
    signed = {"x-pagerduty-signature": sign(body, PD_SECRET), "content-type": "application/json"}
    response = await h.anonymous.post("/webhooks/pagerduty", content=body, headers=signed)
    assert response.status_code == 401
    assert await stored_alert_count(h) == 0

    rotation = f"{other},{sign(body, PD_SECRET)}"
    response = await h.anonymous.post(
        "/webhooks/pagerduty", content=body, headers={**token, "x-pagerduty-signature": rotation}
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"received": 1, "stored": 1, "duplicates": 0, "truncated_alerts": 0}
    metrics = (await h.client.get("/metrics")).text
    assert 'reason="wrong_signature"' in metrics
    assert 'reason="missing_signature"' in metrics


async def test_pagerduty_without_a_secret_needs_only_the_token(make_harness: Any) -> None:
    h = await make_harness(webhook_token="wh-token")
    body = PD_TRIGGERED.read_bytes()
    response = await h.anonymous.post("/webhooks/pagerduty", content=body)
    assert response.status_code == 401
    response = await h.anonymous.post(
        "/webhooks/pagerduty", content=body, headers={"authorization": "Bearer wh-token"}
    )
    assert response.status_code == 200, response.text


async def test_pagerduty_bad_field_is_422_naming_it_and_nothing_stored(make_harness: Any) -> None:
    h = await make_harness()
    payload = json.loads(PD_TRIGGERED.read_text())
    del payload["event"]["data"]["id"]
    response = await h.client.post("/webhooks/pagerduty", json=payload)
    assert response.status_code == 422
    assert response.json() == {
        "detail": "event.data.id: required field is missing",
        "field": "event.data.id",
    }
    assert (await h.client.post("/webhooks/pagerduty", content=b"{")).status_code == 400
    assert await stored_alert_count(h) == 0


async def test_pagerduty_body_over_limit_is_413(make_harness: Any) -> None:
    h = await make_harness(max_body_bytes=512)
    body = PD_TRIGGERED.read_bytes()
    assert len(body) > 512
    response = await h.client.post("/webhooks/pagerduty", content=body)
    assert response.status_code == 413
    assert await stored_alert_count(h) == 0


@pytest.mark.parametrize("source", ["pagerduty", "datadog", "opsgenie"])
async def test_database_away_is_503_with_retry_after(
    make_harness: Any, source: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The new sources share the answer Alertmanager gets: retry later, never a 4xx."""
    h = await make_harness()

    async def away(*_: Any) -> Any:
        raise ConnectionRefusedError("database is away")

    monkeypatch.setattr(h.services.inbox_writer, "store", away)
    response = await h.post_fixture(source, FIXTURES / source / FIRST_FIXTURE[source])
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"


FIRST_FIXTURE = {
    "pagerduty": "zulip-triggered-v3.json",
    "datadog": "fluffy-metric-alert-triggered.json",
    "opsgenie": "zulip-create.json",
}


@pytest.mark.parametrize("source", ["datadog", "opsgenie"])
async def test_token_required_and_body_bounded_for_unsigned_senders(
    make_harness: Any, source: str
) -> None:
    """Datadog and Opsgenie sign nothing: Ballast's token (a custom header) is the gate."""
    h = await make_harness(webhook_token="wh-token", max_body_bytes=1500)
    body = (FIXTURES / source / FIRST_FIXTURE[source]).read_bytes()
    response = await h.anonymous.post(f"/webhooks/{source}", content=body)
    assert response.status_code == 401
    response = await h.anonymous.post(
        f"/webhooks/{source}", content=body, headers={"authorization": "Bearer wh-token"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["stored"] == 1
    big = json.dumps({**json.loads(body), "padding": "x" * 2000}).encode()
    response = await h.client.post(f"/webhooks/{source}", content=big)
    assert response.status_code == 413


@pytest.mark.parametrize(
    ("source", "body", "field"),
    [
        ("datadog", {"alert_transition": "Triggered", "date": "soon"}, "date"),
        ("datadog", {"alert_transition": "Exploded", "date": "1"}, "alert_transition"),
        ("opsgenie", {"action": "Create", "alert": {"alertId": "a"}}, "alert.createdAt"),
        ("opsgenie", {"action": "Close", "alert": {"updatedAt": 1}}, "alert.alertId"),
    ],
)
async def test_bad_fields_are_422_naming_them(
    make_harness: Any, source: str, body: dict[str, Any], field: str
) -> None:
    h = await make_harness()
    response = await h.client.post(f"/webhooks/{source}", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field
    assert response.json()["detail"].startswith(f"{field}: ")
    assert await stored_alert_count(h) == 0


async def test_a_webhook_that_stores_alerts_wakes_the_engine_once(make_harness: Any) -> None:
    """The writer wakes the engine as the rows commit; a second wake after the answer would
    start a second pass that claims nothing (an empty write transaction per webhook). A
    webhook of duplicates wakes nobody."""
    h = await make_harness()
    wakes: list[str] = []
    loop = h.services.engine._loop
    wake = loop.wake

    def counted() -> None:
        wakes.append("wake")
        wake()

    loop.wake = counted
    response = await h.post_fixture("alertmanager", AM / "firing-group-2-alerts.json")
    assert response.status_code == 200, response.text
    assert wakes == ["wake"]
    again = await h.post_fixture("alertmanager", AM / "firing-group-2-alerts.json")
    assert again.json()["stored"] == 0
    assert wakes == ["wake"]
