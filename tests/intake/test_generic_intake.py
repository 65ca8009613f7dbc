"""The generic JSON form: the documented happy paths and one test per way to get it wrong."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.errors import PayloadError
from bot.intake import AlertSource, AlertStatus, parse_generic
from bot.intake.alert import label_fingerprint
from bot.intake.generic import MAX_ALERTS

from .payload_fixtures import fixture_files, fixture_name, load_fixture

NOW = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)
LABELS = {"alertname": "GroundednessLow", "service": "support-assistant"}


def test_full_alert_in_a_wrapper() -> None:
    body = {
        "alerts": [
            {
                "labels": LABELS,
                "annotations": {"summary": "Groundedness 0.41 < 0.5"},
                "status": "resolved",
                "starts_at": "2024-05-01T12:00:00Z",
                "ends_at": "2024-05-01T14:20:00.250+02:00",
                "fingerprint": "ai-eval-42",
                "generator_url": "https://evals.example/run/42",
            }
        ]
    }

    batch = parse_generic(body, now=NOW)

    assert batch.source is AlertSource.GENERIC
    assert batch.truncated_alerts == 0
    (alert,) = batch.alerts
    assert alert.labels == LABELS
    assert alert.annotations == {"summary": "Groundedness 0.41 < 0.5"}
    assert alert.status is AlertStatus.RESOLVED
    assert alert.starts_at == datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert alert.ends_at == datetime(2024, 5, 1, 12, 20, 0, 250000, tzinfo=UTC)
    assert alert.ends_at.tzinfo is UTC
    assert alert.fingerprint == "ai-eval-42"
    assert alert.generator_url == "https://evals.example/run/42"
    assert alert.source is AlertSource.GENERIC


def test_single_alert_without_wrapper_gets_defaults() -> None:
    (alert,) = parse_generic({"labels": LABELS}, now=NOW).alerts

    assert alert.status is AlertStatus.FIRING
    assert alert.starts_at == NOW
    assert alert.ends_at is None
    assert alert.annotations == {}
    assert alert.fingerprint == label_fingerprint(LABELS)
    assert alert.generator_url is None


def test_fingerprint_depends_on_labels_only() -> None:
    a = parse_generic({"labels": {"b": "2", "alertname": "X"}, "annotations": {"s": "1"}})
    b = parse_generic({"labels": {"alertname": "X", "b": "2"}, "status": "resolved"})

    assert a.alerts[0].fingerprint == b.alerts[0].fingerprint


def test_past_end_without_status_means_resolved() -> None:
    (alert,) = parse_generic({"labels": LABELS, "ends_at": "2024-05-01T12:10:00Z"}, now=NOW).alerts

    assert alert.status is AlertStatus.RESOLVED
    assert alert.ends_at == datetime(2024, 5, 1, 12, 10, tzinfo=UTC)
    assert alert.starts_at == alert.ends_at, "a defaulted start never comes after the end"


def test_future_end_without_status_means_firing() -> None:
    (alert,) = parse_generic({"labels": LABELS, "ends_at": "2024-05-01T13:00:00Z"}, now=NOW).alerts

    assert alert.status is AlertStatus.FIRING
    assert alert.ends_at is None


def test_resolved_without_end_ends_now() -> None:
    (alert,) = parse_generic({"labels": LABELS, "status": "resolved"}, now=NOW).alerts

    assert alert.ends_at == NOW


def test_empty_wrapper_is_an_empty_batch() -> None:
    assert parse_generic({"alerts": []}).alerts == []


def test_non_ascii_values_are_kept() -> None:
    labels = {"alertname": "Latenz hoch", "team": "支付"}

    assert parse_generic({"labels": labels}).alerts[0].labels == labels


def _error(body: object) -> PayloadError:
    with pytest.raises(PayloadError) as caught:
        parse_generic(body, now=NOW)
    return caught.value


def alert(**fields: Any) -> dict[str, Any]:
    return {"labels": dict(LABELS), **fields}


FIELDS = "labels, annotations, status, starts_at, ends_at, fingerprint, generator_url"
TIMESTAMP = 'expected an RFC 3339 timestamp such as "2024-05-01T12:00:00Z"'


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        pytest.param(
            [alert()],
            "",
            'expected a JSON object, either {"alerts": [...]} or a single alert, got an array',
            id="bare-array",
        ),
        pytest.param({}, "labels", "required field is missing", id="no-labels"),
        pytest.param(
            {"alerts": [alert(), {"labels": {"service": "x"}}]},
            "alerts[1].labels.alertname",
            "required label is missing: every alert needs an alertname label (Ballast groups "
            'and triages by it), e.g. "labels": {"alertname": "GroundednessLow"}',
            id="no-alertname",
        ),
        pytest.param(
            {"labels": {"alertname": ""}},
            "labels.alertname",
            'expected a non-empty alertname, got ""',
            id="empty-alertname",
        ),
        pytest.param(
            {"alerts": [alert(), alert(labels={"alertname": "X", "replicas": 3})]},
            "alerts[1].labels.replicas",
            "expected a string, got the number 3",
            id="number-label",
        ),
        pytest.param(
            alert(labels={"alertname": "X", "paging": True}),
            "labels.paging",
            "expected a string, got true",
            id="bool-label",
        ),
        pytest.param(
            alert(labels={"alertname": "X", "team-name": "a"}),
            'labels["team-name"]',
            'invalid name: expected a string matching ^[a-zA-Z_][a-zA-Z0-9_]*$, got "team-name"',
            id="bad-label-name",
        ),
        pytest.param(
            alert(labels={"alertname": "X"} | {f"l{i}": "v" for i in range(100)}),
            "labels",
            "expected at most 100 items, got 101",
            id="too-many-labels",
        ),
        pytest.param(
            alert(annotations={"summary": ["a", "b"]}),
            "annotations.summary",
            "expected a string, got an array",
            id="array-annotation",
        ),
        pytest.param(
            alert(status="FIRING"),
            "status",
            'expected "firing" or "resolved", got "FIRING"',
            id="bad-status",
        ),
        pytest.param(
            alert(starts_at="2024-05-01 12:00"),
            "starts_at",
            f'{TIMESTAMP}, got "2024-05-01 12:00"',
            id="bad-start",
        ),
        pytest.param(
            {"alerts": [alert(ends_at=1714564800)]},
            "alerts[0].ends_at",
            f"{TIMESTAMP}, got the number 1714564800",
            id="unix-end",
        ),
        pytest.param(
            alert(fingerprint=""),
            "fingerprint",
            'expected a non-empty string, got ""',
            id="empty-fingerprint",
        ),
        pytest.param(
            {"alerts": [alert(startsAt="2024-05-01T12:00:00Z")]},
            "alerts[0].startsAt",
            f'unknown field; did you mean "starts_at"? an alert has only {FIELDS}',
            id="camel-case",
        ),
        pytest.param(
            alert(severity="critical"),
            "severity",
            f"unknown field; an alert has only {FIELDS}",
            id="label-at-top",
        ),
        pytest.param(
            {"alerts": [alert()], "receiver": "x"},
            "receiver",
            'unknown field; a body with "alerts" has no other top-level field (or send one '
            "alert object without the wrapper)",
            id="wrapper-extra",
        ),
        pytest.param(
            {"alerts": alert()},
            "alerts",
            "expected an array, got an object",
            id="alerts-object",
        ),
        pytest.param(
            {"alerts": [alert()] * (MAX_ALERTS + 1)},
            "alerts",
            "expected at most 1000 items, got 1001",
            id="too-many-alerts",
        ),
        pytest.param(
            {"groupKey": "{}:{}", "alerts": [alert()]},
            "",
            "this is an Alertmanager or Grafana webhook, not the generic form: send it to "
            "/webhooks/alertmanager or /webhooks/grafana",
            id="alertmanager-body",
        ),
    ],
)
def test_bad_input_names_the_field(body: object, field: str, message: str) -> None:
    error = _error(body)

    assert error.field == field
    assert str(error) == (f"{field}: {message}" if field else message)


FOREIGN_PREFIX = {
    "datadog": "this looks like a Datadog webhook (event_type, title, body)",
    "opsgenie": "this looks like an Opsgenie webhook (action, alert)",
    "pagerduty": "this looks like a PagerDuty V3 webhook (event.event_type)",
}


@pytest.mark.parametrize(
    "path", fixture_files("datadog/*", "opsgenie/*", "pagerduty/*"), ids=fixture_name
)
def test_other_products_sent_to_generic_are_told_their_endpoint(path: Path) -> None:
    product = fixture_name(path).split("/")[0]

    error = _error(load_fixture(fixture_name(path)))

    assert error.field == ""
    assert str(error) == (
        f"{FOREIGN_PREFIX[product]}, not the generic form: send it to /webhooks/{product}"
    )


def test_legacy_grafana_sent_to_generic_gets_the_legacy_explanation() -> None:
    error = _error(load_fixture("grafana/zulip-legacy-alert-v7.json"))

    assert "legacy Grafana alert notification" in str(error)
