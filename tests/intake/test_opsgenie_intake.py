"""Opsgenie webhooks: every payload fixture, the action mapping, time units, bad fields."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.errors import PayloadError
from bot.intake import AlertSource, AlertStatus, parse_opsgenie

from .payload_fixtures import fixture_name, load_fixture

CREATE = "opsgenie/zulip-create.json"
CLOSE = "opsgenie/zulip-close.json"

EXPECTED = {
    CREATE: (
        "opsgenie:ec03dad6-62c8-4c94-b38b-d88f398e900f",
        AlertStatus.FIRING,
        datetime(2017, 8, 14, 11, 25, 56, 288000, tzinfo=UTC),  # createdAt, milliseconds
    ),
    CLOSE: (
        "opsgenie:052652ac-5d1c-464a-812a-7dd18bbfba8c",
        AlertStatus.RESOLVED,
        datetime(2015, 1, 5, 10, 6, 14, 669001, tzinfo=UTC),  # updatedAt, nanoseconds
    ),
    "opsgenie/zulip-acknowledge.json": None,
}


def test_every_fixture_parses(opsgenie_file: Path) -> None:
    name = fixture_name(opsgenie_file)
    batch = parse_opsgenie(load_fixture(name))

    assert batch.source is AlertSource.OPSGENIE
    expected = EXPECTED[name]
    if expected is None:
        assert batch.alerts == []
        assert batch.ignored is not None
        assert batch.ignored.startswith("Acknowledge: ")
        return
    [alert] = batch.alerts
    assert (alert.fingerprint, alert.status, alert.starts_at) == expected
    assert alert.ends_at == (alert.starts_at if alert.status is AlertStatus.RESOLVED else None)


def test_create_labels_and_annotations() -> None:
    [alert] = parse_opsgenie(load_fixture(CREATE)).alerts

    assert alert.labels == {"alertname": "another alert", "service": "Server"}
    assert alert.annotations == {
        "summary": "another alert",
        "opsgenie_alert_id": "ec03dad6-62c8-4c94-b38b-d88f398e900f",
        "opsgenie_alias": "alert-alias",
        "opsgenie_tiny_id": "2",
        "opsgenie_priority": "P3",  # sent as the number 3
        "opsgenie_tags": "vip",
        "opsgenie_entity": "Server",
        "opsgenie_source": "test@example.com",
        "opsgenie_user": "test@example.com",
        "opsgenie_integration": "Webhook",
        "opsgenie_action": "Create",
    }


def _body(name: str, action: str, **alert: Any) -> dict[str, Any]:
    body = copy.deepcopy(load_fixture(name))
    assert isinstance(body, dict)
    body["action"] = action
    body["alert"].update(alert)
    return body


def test_close_of_a_created_alert_has_its_labels() -> None:
    """A Close carries what a Create does, minus priority and details: the labels match."""
    [fire] = parse_opsgenie(load_fixture(CREATE)).alerts
    close = _body(CREATE, "Close", updatedAt=1502710000000000000, tags=[])
    del close["alert"]["priority"]
    [end] = parse_opsgenie(close).alerts

    assert (end.fingerprint, end.labels) == (fire.fingerprint, fire.labels)
    assert end.status is AlertStatus.RESOLVED
    assert end.starts_at == end.ends_at == datetime(2017, 8, 14, 11, 26, 40, tzinfo=UTC)


@pytest.mark.parametrize(
    ("action", "reason"),
    [
        ("Acknowledge", "an acknowledgement in Opsgenie does not change"),
        ("UnAcknowledge", "an acknowledgement in Opsgenie does not change"),
        ("AddNote", "notes made in Opsgenie stay there"),
        ("AddTags", "does not change whether the alert fires"),
        ("Delete", "does not change whether the alert fires"),
    ],
)
def test_other_actions_are_ignored_with_a_reason(action: str, reason: str) -> None:
    batch = parse_opsgenie({"action": action, "alert": {"note": "looking"}})

    assert batch.alerts == []
    assert batch.ignored is not None
    assert batch.ignored.startswith(f"{action}: ")
    assert reason in batch.ignored


def _without(name: str, key: str) -> dict[str, Any]:
    body = copy.deepcopy(load_fixture(name))
    assert isinstance(body, dict)
    del body["alert"][key]
    return body


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        pytest.param(_without(CREATE, "alertId"), "alert.alertId", "required", id="id"),
        pytest.param(_without(CREATE, "createdAt"), "alert.createdAt", "required", id="created"),
        pytest.param(_without(CLOSE, "updatedAt"), "alert.updatedAt", "required", id="updated"),
        pytest.param(
            _body(CREATE, "Create", createdAt="soon"),
            "alert.createdAt",
            "expected a Unix time",
            id="created-text",
        ),
        pytest.param(
            _body(CREATE, "Create", createdAt=1.5e12),
            "alert.createdAt",
            "expected a Unix time",
            id="created-float",
        ),
        pytest.param(
            _body(CREATE, "Create", tags="vip"), "alert.tags", "expected an array", id="tags"
        ),
        pytest.param({"alert": {}}, "action", "required", id="no-action"),
        pytest.param({"action": "Create"}, "alert", "expected an object", id="no-alert"),
        pytest.param(42, "", "expected an object", id="number"),
    ],
)
def test_bad_fields_are_named(body: object, field: str, message: str) -> None:
    with pytest.raises(PayloadError) as caught:
        parse_opsgenie(body)

    assert caught.value.field == field
    assert message in str(caught.value)
