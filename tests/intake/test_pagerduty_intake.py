"""PagerDuty V3 webhooks: every payload fixture, the event mapping, bad fields, signatures."""

from __future__ import annotations

import copy
import hashlib
import hmac
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.errors import PayloadError
from bot.intake import AlertSource, AlertStatus, parse_pagerduty
from bot.intake.pagerduty import SignatureCheck, check_signature, sign

from .payload_fixtures import fixture_name, load_fixture

TRIGGERED = "pagerduty/zulip-triggered-v3.json"

# (fixture, fingerprint, status, starts_at) or None when the event is ignored.
EXPECTED: dict[str, tuple[str, AlertStatus, datetime] | None] = {
    TRIGGERED: (
        "pagerduty:PFQZPSY",
        AlertStatus.FIRING,
        datetime(2021, 6, 4, 13, 35, 29, 781000, tzinfo=UTC),
    ),
    "pagerduty/zulip-resolved-v3.json": (
        "pagerduty:PCPZE64",
        AlertStatus.RESOLVED,
        datetime(2021, 6, 4, 13, 16, 53, 816000, tzinfo=UTC),
    ),
    "pagerduty/zulip-acknowledged-v3.json": None,
}


def test_every_fixture_parses(pagerduty_file: Path) -> None:
    name = fixture_name(pagerduty_file)
    batch = parse_pagerduty(load_fixture(name))

    assert batch.source is AlertSource.PAGERDUTY
    expected = EXPECTED[name]
    if expected is None:
        assert batch.alerts == []
        assert batch.ignored is not None
        assert batch.ignored.startswith("incident.acknowledged: ")
        return
    fingerprint, status, starts_at = expected
    [alert] = batch.alerts
    assert batch.ignored is None
    assert (alert.fingerprint, alert.status, alert.starts_at) == (fingerprint, status, starts_at)
    assert alert.ends_at == (starts_at if status is AlertStatus.RESOLVED else None)
    assert alert.labels["service"] == "pig208"
    assert alert.labels["severity"] == "critical"  # urgency high
    assert alert.labels["pagerduty_service_id"] == "PA2P440"
    assert alert.generator_url is not None
    assert alert.generator_url.startswith("https://pig208.pagerduty.com/incidents/")


def test_triggered_labels_and_annotations() -> None:
    [alert] = parse_pagerduty(load_fixture(TRIGGERED)).alerts

    assert alert.labels == {
        "alertname": "Test Incident 3",
        "service": "pig208",
        "severity": "critical",
        "pagerduty_service_id": "PA2P440",
    }
    assert alert.annotations == {
        "summary": "Test Incident 3",
        "pagerduty_url": "https://pig208.pagerduty.com/incidents/PFQZPSY",
        "pagerduty_incident_id": "PFQZPSY",
        "pagerduty_incident_number": "9",
        "pagerduty_status": "triggered",
        "pagerduty_urgency": "high",
        "pagerduty_escalation_policy": "Default",
        "pagerduty_assignees": "PIG 208",
        "pagerduty_agent": "PIG 208",
        "pagerduty_event": "incident.triggered 01BZYIL05THJDFF2Y08X9SVMTU",
    }


def _event(event_type: str, **data: Any) -> dict[str, Any]:
    body = copy.deepcopy(load_fixture(TRIGGERED))
    assert isinstance(body, dict)
    body["event"]["event_type"] = event_type
    body["event"]["data"].update(data)
    return body


def test_reopened_fires_a_new_occurrence_and_resolved_ends_the_latest() -> None:
    reopened = _event("incident.reopened")
    reopened["event"]["occurred_at"] = "2021-06-04T14:00:00Z"
    resolved = _event("incident.resolved", status="resolved", urgency="low")
    resolved["event"]["occurred_at"] = "2021-06-04T14:05:00Z"

    [fire] = parse_pagerduty(reopened).alerts
    [end] = parse_pagerduty(resolved).alerts

    assert fire.status is AlertStatus.FIRING
    assert fire.starts_at == datetime(2021, 6, 4, 14, 0, tzinfo=UTC)
    assert end.status is AlertStatus.RESOLVED
    assert end.fingerprint == fire.fingerprint == "pagerduty:PFQZPSY"
    assert end.starts_at == end.ends_at == datetime(2021, 6, 4, 14, 5, tzinfo=UTC)
    assert end.labels["severity"] == "warning"


@pytest.mark.parametrize(
    ("event_type", "reason"),
    [
        ("incident.acknowledged", "an acknowledgement in PagerDuty does not change"),
        ("incident.unacknowledged", "an acknowledgement in PagerDuty does not change"),
        ("incident.annotated", "does not change whether the incident is open"),
        ("incident.escalated", "does not change whether the incident is open"),
        ("service.updated", "not an incident event"),
        ("pagey.ping", "not an incident event"),
    ],
)
def test_other_events_are_ignored_with_a_reason(event_type: str, reason: str) -> None:
    # Their data is not read: a service event's data is not an incident.
    batch = parse_pagerduty({"event": {"event_type": event_type, "data": {"name": "x"}}})

    assert batch.alerts == []
    assert batch.ignored is not None
    assert batch.ignored.startswith(f"{event_type}: ")
    assert reason in batch.ignored


def test_missing_title_and_service_still_route() -> None:
    body = {
        "event": {
            "event_type": "incident.triggered",
            "occurred_at": "2021-06-04T13:35:29Z",
            "data": {"id": "PX"},
        }
    }
    [alert] = parse_pagerduty(body).alerts

    assert alert.labels == {"alertname": "PagerDutyIncident"}
    assert alert.generator_url is None


def _without(path: tuple[str, ...]) -> dict[str, Any]:
    body = copy.deepcopy(load_fixture(TRIGGERED))
    assert isinstance(body, dict)
    node = body
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return body


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        pytest.param(_without(("event", "data", "id")), "event.data.id", "required", id="id"),
        pytest.param(
            _without(("event", "occurred_at")), "event.occurred_at", "required", id="occurred"
        ),
        pytest.param(_without(("event", "event_type")), "event.event_type", "required", id="type"),
        pytest.param({"messages": []}, "event", "required", id="v2-body"),
        pytest.param(
            _event("incident.triggered", id=""), "event.data.id", "non-empty", id="empty-id"
        ),
        pytest.param(
            _event("incident.triggered", service={"summary": 3}),
            "event.data.service.summary",
            "expected a string, got the number 3",
            id="service-number",
        ),
        pytest.param(
            _event("incident.resolved", number="nine"),
            "event.data.number",
            "expected an integer",
            id="number",
        ),
        pytest.param("x", "", "expected an object", id="not-an-object"),
    ],
)
def test_bad_fields_are_named(body: object, field: str, message: str) -> None:
    with pytest.raises(PayloadError) as caught:
        parse_pagerduty(body)

    assert caught.value.field == field
    assert message in str(caught.value)


def test_bad_occurred_at_is_named() -> None:
    body = _event("incident.triggered")
    body["event"]["occurred_at"] = "yesterday"
    with pytest.raises(PayloadError) as caught:
        parse_pagerduty(body)
    assert caught.value.field == "event.occurred_at"


SECRET = "ChangedSecret1234"
BODY = b'{"event": {"event_type": "incident.triggered"}}'


def _hmac(body: bytes, secret: str) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (f"v1={_hmac(BODY, SECRET)}", SignatureCheck.MATCHED),
        # A rotation: one entry per secret, in either order, with or without spaces.
        (f"v1={_hmac(BODY, 'old-secret')},v1={_hmac(BODY, SECRET)}", SignatureCheck.MATCHED),
        (f"v1={_hmac(BODY, SECRET)}, v1={_hmac(BODY, 'new')}", SignatureCheck.MATCHED),
        (f"v1={_hmac(BODY, SECRET).upper()}", SignatureCheck.MATCHED),
        (f"v1={_hmac(BODY, 'old-secret')},v1={_hmac(BODY, 'new')}", SignatureCheck.WRONG),
        (f"v1={_hmac(BODY + b' ', SECRET)}", SignatureCheck.WRONG),  # another body
        ("v1=", SignatureCheck.WRONG),
        ("v1=é\x00", SignatureCheck.WRONG),
        (f"v0={_hmac(BODY, SECRET)}", SignatureCheck.MISSING),
        ("", SignatureCheck.MISSING),
        (None, SignatureCheck.MISSING),
    ],
)
def test_signature_check(header: str | None, expected: SignatureCheck) -> None:
    assert check_signature(BODY, header, SECRET) is expected


def test_sign_makes_what_check_accepts() -> None:
    assert sign(BODY, SECRET) == f"v1={_hmac(BODY, SECRET)}"
    assert check_signature(BODY, sign(BODY, SECRET), SECRET) is SignatureCheck.MATCHED
