"""Alertmanager webhooks: every payload fixture, then the rules that real senders exercise."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.errors import PayloadError
from bot.intake import AlertSource, AlertStatus, parse_alertmanager
from bot.intake.alert import label_fingerprint

from .payload_fixtures import fixture_files, fixture_name, load_fixture

FIRING, RESOLVED = AlertStatus.FIRING, AlertStatus.RESOLVED
CHECKOUT_KEY = '{}:{alertname="HighErrorRate", service="checkout"}'
STORM_KEY = '{}:{alertname="TruncatedGroup", service="storm"}'
GROUNDEDNESS_KEY = '{}:{alertname="LowGroundedness", service="support-assistant"}'
CAPTURED = "alertmanager-captured"
CAPTURED_URL = "http://127.0.0.1:47731"


@dataclass(frozen=True)
class Expected:
    alerts: tuple[tuple[str, AlertStatus], ...]  # (fingerprint, status), in payload order
    group_key: str
    receiver: str
    external_url: str
    truncated: int = 0


TRUNCATED = Expected(
    (("f44aac5b5a496e40", FIRING), ("445c00ed1e376045", FIRING), ("c24d3f3ffdcdf5de", FIRING)),
    STORM_KEY,
    "webhook",
    "http://127.0.0.1:52013",
    truncated=7,
)

EXPECTED = {
    "alertmanager-captured/firing-group-2-alerts.json": Expected(
        (("2f37b53748985404", FIRING), ("d1ed38e55b38e745", FIRING)),
        CHECKOUT_KEY,
        "webhook",
        CAPTURED_URL,
    ),
    "alertmanager-captured/firing-group-update-3-alerts.json": Expected(
        (("2f37b53748985404", FIRING), ("d1ed38e55b38e745", FIRING), ("7f70d69a70d4807e", FIRING)),
        CHECKOUT_KEY,
        "webhook",
        CAPTURED_URL,
    ),
    "alertmanager-captured/firing-group-one-resolved.json": Expected(
        (
            ("2f37b53748985404", RESOLVED),
            ("d1ed38e55b38e745", FIRING),
            ("7f70d69a70d4807e", FIRING),
        ),
        CHECKOUT_KEY,
        "webhook",
        CAPTURED_URL,
    ),
    "alertmanager-captured/resolved-group.json": Expected(
        (("d1ed38e55b38e745", RESOLVED), ("7f70d69a70d4807e", RESOLVED)),
        CHECKOUT_KEY,
        "webhook",
        CAPTURED_URL,
    ),
    "alertmanager-captured/firing-truncated-max-alerts-3.json": TRUNCATED,
    "alertmanager-captured/firing-repeat-notification.json": TRUNCATED,
    "alertmanager-captured/prometheus-firing.json": Expected(
        (("6cc5dd98584d608e", FIRING),), GROUNDEDNESS_KEY, "webhook", CAPTURED_URL
    ),
    "alertmanager-captured/prometheus-resolved.json": Expected(
        (("6cc5dd98584d608e", RESOLVED),), GROUNDEDNESS_KEY, "webhook", CAPTURED_URL
    ),
    "alertmanager-captured/storm-single-alert-group.json": Expected(
        (("72513fd31ffa26d9", FIRING),),
        '{}:{alertname="StormAlert0028", service="storm-0028"}',
        "webhook",
        CAPTURED_URL,
    ),
    "alertmanager/am-exec-testdata-success.json": Expected(
        (("4ea129fd903f0e45", FIRING),), "1", "", "http://am"
    ),
    "alertmanager/am-exec-testdata-scope-resolved-empty.json": Expected((), "1", "", "http://am"),
    "alertmanager/zulip-alert-firing-2.json": Expected(
        (("a1bc48475b20e73d", FIRING), ("c2ea85182f28cbd9", FIRING)),
        "{}/{}:{}",
        "ops-zulip",
        "http://ops1:9093",
    ),
}
# Recorded beside the payloads, but not a body: the headers Alertmanager sent with them.
NOT_PAYLOADS = {"alertmanager-captured/request-headers.json"}


def test_every_fixture_has_expectations(alertmanager_file: Path) -> None:
    name = fixture_name(alertmanager_file)
    assert name in EXPECTED or name in NOT_PAYLOADS, f"add expectations for new fixture {name}"


def test_every_expectation_has_a_fixture() -> None:
    names = {fixture_name(path) for path in fixture_files("alertmanager*/*")}
    assert set(EXPECTED) | NOT_PAYLOADS == names


def test_fixture_parses_to_expected_batch(alertmanager_file: Path) -> None:
    name = fixture_name(alertmanager_file)
    if name in NOT_PAYLOADS:
        headers = load_fixture(name)
        assert isinstance(headers, dict)
        assert headers["User-Agent"] == "Alertmanager/0.25.0"
        with pytest.raises(PayloadError) as caught:
            parse_alertmanager(headers)
        assert caught.value.field == "alerts"
        assert str(caught.value) == "alerts: required field is missing"
        return
    raw = load_fixture(name)
    assert isinstance(raw, dict)
    expected = EXPECTED[name]

    batch = parse_alertmanager(raw)

    assert batch.source is AlertSource.ALERTMANAGER
    assert tuple((a.fingerprint, a.status) for a in batch.alerts) == expected.alerts
    assert batch.group_key == expected.group_key
    assert batch.receiver == expected.receiver
    assert batch.external_url == expected.external_url
    assert batch.truncated_alerts == expected.truncated
    for alert, sent in zip(batch.alerts, raw["alerts"], strict=True):
        assert alert.labels == sent["labels"]
        assert alert.annotations == sent["annotations"]
        assert alert.source is AlertSource.ALERTMANAGER
        assert alert.starts_at.tzinfo is UTC
        if alert.status is FIRING:
            assert alert.ends_at is None, "0001-01-01T00:00:00Z means still firing"
        else:
            assert alert.ends_at is not None
            assert alert.ends_at.tzinfo is UTC
            assert alert.ends_at >= alert.starts_at
        assert alert.generator_url == (sent["generatorURL"] or None)


def test_partially_resolved_group_keeps_each_alerts_own_status_and_times() -> None:
    batch = parse_alertmanager(load_fixture("alertmanager-captured/firing-group-one-resolved.json"))

    resolved, still_firing, _ = batch.alerts
    assert resolved.status is RESOLVED
    assert resolved.starts_at == datetime(2026, 11, 27, 1, 9, 20, 998000, tzinfo=UTC)
    assert resolved.ends_at == datetime(2026, 11, 27, 1, 9, 23, 278000, tzinfo=UTC)
    assert (
        resolved.generator_url == "http://127.0.0.1:9090/graph?g0.expr=job%3Acheckout_5xx%3Aratio"
    )
    assert resolved.annotations["runbook_url"] == "https://runbooks.example.invalid/high-error-rate"
    assert still_firing.status is FIRING
    assert still_firing.ends_at is None
    assert still_firing.generator_url is None


def test_repeat_notification_parses_identically() -> None:
    first = parse_alertmanager(
        load_fixture("alertmanager-captured/firing-truncated-max-alerts-3.json")
    )
    repeat = parse_alertmanager(
        load_fixture("alertmanager-captured/firing-repeat-notification.json")
    )

    assert repeat == first


def test_prometheus_alert_carries_labels_and_annotations() -> None:
    (alert,) = parse_alertmanager(
        load_fixture("alertmanager-captured/prometheus-firing.json")
    ).alerts

    assert alert.alertname == "LowGroundedness"
    assert alert.labels == {
        "alertname": "LowGroundedness",
        "instance": "127.0.0.1:49915",
        "job": "metric-endpoint",
        "service": "support-assistant",
        "severity": "warning",
    }
    assert alert.annotations["summary"] == "Groundedness of support-assistant is 0.4"
    assert alert.starts_at == datetime(2026, 11, 27, 1, 9, 41, 399000, tzinfo=UTC)


def test_old_test_data_shape_is_accepted() -> None:
    """Alertmanager's own exec test data: version "1", receiver "", no truncatedAlerts."""
    (alert,) = parse_alertmanager(load_fixture("alertmanager/am-exec-testdata-success.json")).alerts

    assert alert.labels == {"Message": "message"}
    assert alert.alertname == ""
    assert alert.starts_at == datetime(1970, 1, 1, tzinfo=UTC)
    assert alert.generator_url is None


def test_nanosecond_timestamps_keep_microseconds() -> None:
    batch = parse_alertmanager(load_fixture("alertmanager/zulip-alert-firing-2.json"))

    assert [a.starts_at for a in batch.alerts] == [
        datetime(2020, 2, 6, 0, 17, 58, 432911, tzinfo=UTC)
    ] * 2
    # Same labels, different fingerprints (a hand-edited fixture): both are kept.
    assert batch.alerts[0].labels == batch.alerts[1].labels


# A minimal valid v4 body, for the rules below.
def webhook(**alert_fields: Any) -> dict[str, Any]:
    alert: dict[str, Any] = {
        "status": "firing",
        "labels": {"alertname": "HighErrorRate", "service": "checkout"},
        "annotations": {},
        "startsAt": "2024-05-01T12:00:00.123456789Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "",
        "fingerprint": "2f37b53748985404",
    }
    alert.update(alert_fields)
    return {
        "version": "4",
        "groupKey": "{}:{}",
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "ballast",
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": [alert],
    }


def test_missing_or_empty_fingerprint_is_computed_from_labels() -> None:
    without = webhook()
    del without["alerts"][0]["fingerprint"]
    empty = webhook(fingerprint="")

    expected = label_fingerprint({"alertname": "HighErrorRate", "service": "checkout"})
    assert parse_alertmanager(without).alerts[0].fingerprint == expected
    assert parse_alertmanager(empty).alerts[0].fingerprint == expected
    assert parse_alertmanager(webhook(fingerprint=None)).alerts[0].fingerprint == expected


def test_optional_group_fields_may_be_absent_or_null() -> None:
    body = {"alerts": webhook(annotations=None, endsAt=None)["alerts"], "groupLabels": None}

    batch = parse_alertmanager(body)

    assert batch.group_key is None
    assert batch.receiver is None
    assert batch.truncated_alerts == 0
    assert batch.alerts[0].annotations == {}
    assert batch.alerts[0].ends_at is None


def test_unknown_fields_and_other_versions_are_ignored() -> None:
    body = webhook(somethingNew={"nested": [1, 2]})
    body["version"] = "5"
    body["futureField"] = True

    assert parse_alertmanager(body).alerts[0].fingerprint == "2f37b53748985404"


def test_offsets_are_converted_to_utc() -> None:
    body = webhook(
        status="resolved",
        startsAt="2024-05-01T14:00:00+02:00",
        endsAt="2024-05-01t12:30:00.5z",
    )

    (alert,) = parse_alertmanager(body).alerts

    assert alert.starts_at == datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    assert alert.starts_at.tzinfo is UTC
    assert alert.ends_at == datetime(2024, 5, 1, 12, 30, 0, 500000, tzinfo=UTC)


def test_firing_alert_never_reports_an_end() -> None:
    """A planned end of a firing alert is not a fact; Alertmanager itself hides it."""
    (alert,) = parse_alertmanager(webhook(endsAt="2099-01-01T00:00:00Z")).alerts

    assert alert.ends_at is None


def test_group_status_does_not_override_alert_status() -> None:
    body = webhook(status="resolved", endsAt="2024-05-01T12:05:00Z")
    body["status"] = "firing"

    assert parse_alertmanager(body).alerts[0].status is RESOLVED


def _error(body: object) -> PayloadError:
    with pytest.raises(PayloadError) as caught:
        parse_alertmanager(body)
    return caught.value


def _with_second_alert(**fields: Any) -> dict[str, Any]:
    body = webhook()
    second = copy.deepcopy(body["alerts"][0])
    second.update(fields)
    body["alerts"].append(second)
    return body


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        pytest.param(
            [],
            "",
            "expected an object, got an array",
            id="body-not-object",
        ),
        pytest.param(
            {"version": "4"},
            "alerts",
            "required field is missing",
            id="no-alerts",
        ),
        pytest.param(
            {"alerts": {"status": "firing"}},
            "alerts",
            "expected an array, got an object",
            id="alerts-not-array",
        ),
        pytest.param(
            _with_second_alert(startsAt="yesterday"),
            "alerts[1].startsAt",
            'expected an RFC 3339 timestamp such as "2024-05-01T12:00:00Z", got "yesterday"',
            id="bad-start",
        ),
        pytest.param(
            _with_second_alert(startsAt=1714564800),
            "alerts[1].startsAt",
            'expected an RFC 3339 timestamp such as "2024-05-01T12:00:00Z", '
            "got the number 1714564800",
            id="unix-start",
        ),
        pytest.param(
            _with_second_alert(startsAt="2024-05-01T12:00:00"),
            "alerts[1].startsAt",
            'expected an RFC 3339 timestamp such as "2024-05-01T12:00:00Z", '
            'got "2024-05-01T12:00:00"',
            id="start-without-offset",
        ),
        pytest.param(
            _with_second_alert(endsAt="2024-02-30T00:00:00Z"),
            "alerts[1].endsAt",
            'expected an RFC 3339 timestamp, got "2024-02-30T00:00:00Z", which is not a real '
            "date and time",
            id="impossible-end",
        ),
        pytest.param(
            _with_second_alert(startsAt="9999-12-31T23:59:59-01:00"),
            "alerts[1].startsAt",
            'timestamp "9999-12-31T23:59:59-01:00" is out of range in UTC',
            id="start-out-of-range",
        ),
        pytest.param(
            _with_second_alert(status="pending"),
            "alerts[1].status",
            'expected "firing" or "resolved", got "pending"',
            id="bad-status",
        ),
        pytest.param(
            _with_second_alert(labels={"alertname": "X", "replicas": 3}),
            "alerts[1].labels.replicas",
            "expected a string, got the number 3",
            id="number-label",
        ),
        pytest.param(
            _with_second_alert(labels={"alertname": "X", "": "empty"}),
            'alerts[1].labels[""]',
            'invalid name: expected a non-empty string, got ""',
            id="empty-label-name",
        ),
        pytest.param(
            _with_second_alert(labels=["alertname", "X"]),
            "alerts[1].labels",
            "expected an object, got an array",
            id="labels-array",
        ),
        pytest.param(
            _with_second_alert(annotations={"summary": None}),
            "alerts[1].annotations.summary",
            "expected a string, got null",
            id="null-annotation",
        ),
        pytest.param(
            _with_second_alert(fingerprint="f" * 129),
            "alerts[1].fingerprint",
            "expected at most 128 characters, got 129",
            id="long-fingerprint",
        ),
        pytest.param(
            {**webhook(), "truncatedAlerts": -1},
            "truncatedAlerts",
            "expected a number >= 0, got the number -1",
            id="negative-truncated",
        ),
        pytest.param(
            {**webhook(), "truncatedAlerts": "7"},
            "truncatedAlerts",
            'expected an integer, got "7"',
            id="string-truncated",
        ),
    ],
)
def test_bad_payload_names_the_field(body: object, field: str, message: str) -> None:
    error = _error(body)

    assert error.field == field
    assert str(error) == (f"{field}: {message}" if field else message)


def test_several_problems_are_counted() -> None:
    body = _with_second_alert(status="pending", startsAt="never")

    error = _error(body)

    assert error.field == "alerts[1].status"
    assert str(error).endswith("(and 1 more problem)")
