"""Datadog webhooks: every payload fixture, the documented template, tags, bad fields."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.errors import PayloadError
from bot.intake import AlertSource, AlertStatus, detect_source, parse_datadog

from .payload_fixtures import fixture_name, load_fixture

DOCS = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"
TRIGGERED = "datadog/fluffy-metric-alert-triggered.json"
RECOVERED = "datadog/fluffy-metric-alert-recovered.json"

EXPECTED = {
    TRIGGERED: (AlertStatus.FIRING, datetime(2015, 11, 25, 7, 12, 10, tzinfo=UTC)),
    RECOVERED: (AlertStatus.RESOLVED, datetime(2015, 11, 25, 7, 11, 17, tzinfo=UTC)),
    "datadog/relay-default-payload-test-notification.json": (
        AlertStatus.FIRING,
        datetime(2020, 6, 3, 20, 43, 5, tzinfo=UTC),
    ),
}


def test_every_fixture_parses(datadog_file: Path) -> None:
    name = fixture_name(datadog_file)
    batch = parse_datadog(load_fixture(name))

    [alert] = batch.alerts
    assert batch.source is alert.source is AlertSource.DATADOG
    assert (alert.status, alert.starts_at) == EXPECTED[name]
    assert alert.ends_at == (alert.starts_at if alert.status is AlertStatus.RESOLVED else None)
    assert alert.fingerprint.startswith("datadog:")
    assert alert.annotations["summary"].startswith("[")  # the event title, as sent


def test_trigger_and_recovery_share_fingerprint_and_labels() -> None:
    """The custom template without a cycle key: the tags and the bare title identify it."""
    [fire] = parse_datadog(load_fixture(TRIGGERED)).alerts
    [end] = parse_datadog(load_fixture(RECOVERED)).alerts

    assert fire.fingerprint == end.fingerprint
    assert fire.labels == end.labels
    assert fire.labels["alertname"] == "Dock is almost out of memory..."
    assert fire.labels["host"] == "i-3b93aafb"
    assert fire.labels["monitor"] == "true"  # a tag without a value
    assert fire.labels["security-group"] == "sg-59a3503c,sg-cb8e7dae"  # one key, two values
    assert fire.generator_url == "https://app.datadoghq.com/event/event?id=3089904566766935419"
    assert not fire.annotations["description"].startswith("%%%")


def test_default_template_reads_status_from_the_title() -> None:
    body = load_fixture("datadog/relay-default-payload-test-notification.json")
    [alert] = parse_datadog(body).alerts
    assert alert.labels == {"alertname": "[TEST] Host Cluster Alert"}
    assert alert.annotations["datadog_org"] == "Puppet"


def _documented_template() -> dict[str, Any]:
    """The payload template docs/webhooks.md tells users to paste into Datadog."""
    text = DOCS.read_text()
    found = re.search(r"<!-- datadog-template -->\n```json\n(.*?)\n```", text, re.S)
    assert found, "docs/webhooks.md lost its Datadog payload template"
    template: dict[str, Any] = json.loads(found.group(1))
    return template


def _filled(template: dict[str, Any], values: dict[str, str]) -> dict[str, Any]:
    """What Datadog posts: each ``$VARIABLE`` replaced by its value (left alone if none)."""
    text = json.dumps(template)
    for name, value in values.items():
        text = text.replace(f"${name}", json.dumps(value)[1:-1])
    return dict(json.loads(text))


VALUES = {
    "ID": "7419999999999999999",
    "ALERT_ID": "309811",
    "ALERT_CYCLE_KEY": "7419990000000000000",
    "AGGREG_KEY": "9bd4ac313a4d1e8fd4ec9ea3d1c1bf8a",
    "ALERT_TRANSITION": "Triggered",
    "ALERT_TYPE": "error",
    "ALERT_TITLE": '[P1] [Triggered on {service:checkout}] Checkout "p99" latency high',
    "ALERT_STATUS": "",
    "ALERT_PRIORITY": "P1",
    "ALERT_QUERY": "avg(last_5m):avg:trace.http.request.duration{service:checkout} > 2",
    "ALERT_SCOPE": "service:checkout,env:prod",
    "ALERT_METRIC": "trace.http.request.duration",
    "EVENT_TYPE": "query_alert_monitor",
    "EVENT_TITLE": '[P1] [Triggered on {service:checkout}] Checkout "p99" latency high',
    "EVENT_MSG": "%%%\nLatency above 2 s\n@webhook-ballast\n%%%",
    "DATE": "1764806400000",
    "LAST_UPDATED": "1764806400000",
    "TAGS": "env:prod,service:checkout,team:payments,monitor",
    "LINK": "https://app.datadoghq.com/monitors/309811",
    "HOSTNAME": "",
    "ORG_ID": "415600",
    "ORG_NAME": "Example",
}


def test_the_documented_template_filled_in() -> None:
    body = _filled(_documented_template(), VALUES)
    assert detect_source(body) is AlertSource.DATADOG

    [alert] = parse_datadog(body).alerts

    assert alert.fingerprint == "datadog:7419990000000000000"
    assert alert.status is AlertStatus.FIRING
    assert alert.starts_at == datetime(2025, 12, 4, tzinfo=UTC)
    assert alert.labels == {
        "env": "prod",
        "service": "checkout",
        "team": "payments",
        "monitor": "true",
        "alertname": 'Checkout "p99" latency high',
        "severity": "critical",
    }
    assert alert.annotations["description"] == "Latency above 2 s\n@webhook-ballast"
    assert alert.annotations["datadog_monitor_id"] == "309811"
    assert "datadog_hostname" not in alert.annotations  # sent empty

    recovered = _filled(
        _documented_template(),
        {
            **VALUES,
            "ALERT_TRANSITION": "Recovered",
            "ALERT_TYPE": "success",
            "DATE": "1764806700000",
        },
    )
    [end] = parse_datadog(recovered).alerts
    assert (end.fingerprint, end.labels) == (alert.fingerprint, alert.labels)
    assert end.status is AlertStatus.RESOLVED
    assert end.ends_at == datetime(2025, 12, 4, 0, 5, tzinfo=UTC)


def test_unfilled_variables_count_as_absent() -> None:
    body = _filled(_documented_template(), {"DATE": "1764806400000", "ALERT_TRANSITION": "Warn"})
    [alert] = parse_datadog(body).alerts
    assert alert.labels == {"alertname": "DatadogMonitor"}
    assert alert.fingerprint.startswith("datadog:")
    assert alert.status is AlertStatus.FIRING


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        pytest.param({"alert_transition": "Triggered"}, "date", "required", id="no-date"),
        pytest.param(
            {"alert_transition": "Triggered", "date": "yesterday"},
            "date",
            "expected a Unix time in milliseconds",
            id="bad-date",
        ),
        pytest.param(
            {"alert_transition": "Triggered", "last_updated": "-5"},
            "last_updated",
            "expected a Unix time",
            id="bad-last-updated",
        ),
        pytest.param(
            {"alert_transition": "Exploded", "date": "1"},
            "alert_transition",
            'got "Exploded"',
            id="unknown-transition",
        ),
        pytest.param(
            {"date": "1448435530000", "title": "no prefix"},
            "alert_transition",
            "cannot tell a trigger from a recovery",
            id="no-status",
        ),
        pytest.param(
            {"alert_transition": True, "date": "1"},
            "alert_transition",
            "expected a string, got true",
            id="bool",
        ),
        pytest.param(
            {"alert_transition": "Triggered", "date": "1", "org": "x"},
            "org",
            "expected an object",
            id="org",
        ),
        pytest.param([], "", "expected an object", id="array"),
    ],
)
def test_bad_fields_are_named(body: object, field: str, message: str) -> None:
    with pytest.raises(PayloadError) as caught:
        parse_datadog(body)

    assert caught.value.field == field
    assert message in str(caught.value)


def test_a_number_written_without_quotes_is_read_as_text() -> None:
    [alert] = parse_datadog({"alert_transition": "Recovered", "date": 1448435477000}).alerts
    assert alert.starts_at == datetime(2015, 11, 25, 7, 11, 17, tzinfo=UTC)
