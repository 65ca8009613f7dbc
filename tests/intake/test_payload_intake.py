"""Reading the body, guessing the sender, and dispatching: the names the HTTP side imports."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.errors import PayloadError
from bot.intake import (
    AlertSource,
    detect_source,
    parse_alertmanager,
    parse_json_bytes,
    parse_payload,
)

from .payload_fixtures import fixture_files, fixture_name, load_fixture


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(b"", "malformed JSON at line 1, column 1: Expecting value", id="empty"),
        pytest.param(
            b'{\n  "alerts": [\n    {"status": "firing",}\n  ]\n}',
            "malformed JSON at line 3, column 25: Expecting property name enclosed in "
            "double quotes",
            id="trailing-comma",
        ),
        pytest.param(
            b'{"alerts": []',
            "malformed JSON at line 1, column 14: Expecting ',' delimiter",
            id="truncated",
        ),
        pytest.param(
            b'{"value": NaN}',
            "malformed JSON: NaN is not a JSON value (JSON has no NaN or Infinity)",
            id="nan",
        ),
        pytest.param(
            b'{"value": -Infinity}',
            "malformed JSON: -Infinity is not a JSON value (JSON has no NaN or Infinity)",
            id="infinity",
        ),
        pytest.param(
            b'{"n": 1e400}',
            "malformed JSON: the number 1e400 is too large for a float",
            id="float-overflow",
        ),
        pytest.param(
            b"[" + b"9" * 5000 + b"]",
            "malformed JSON: an integer has thousands of digits",
            id="huge-integer",
        ),
        pytest.param(
            b'{"a": "caf\xe9"}',
            "the body is not UTF-8 text: byte 10 (0xe9) cannot be decoded; send JSON encoded "
            "as UTF-8",
            id="latin-1",
        ),
        pytest.param(
            b"[" * 100_000,
            "the JSON is nested too deeply to be an alert payload",
            id="deep",
        ),
    ],
)
def test_bad_json_says_where(body: bytes, message: str) -> None:
    with pytest.raises(PayloadError) as caught:
        parse_json_bytes(body)

    assert caught.value.field == ""
    assert str(caught.value) == message


def test_json_edge_cases_that_are_fine() -> None:
    assert parse_json_bytes(b'\xef\xbb\xbf{"a": 1}') == {"a": 1}
    assert parse_json_bytes(b'{"e": "\\ud83d\\ude00", "n": 1420452224764002246}') == {
        "e": "😀",
        "n": 1420452224764002246,
    }
    assert parse_json_bytes('{"k": "指数"}'.encode()) == {"k": "指数"}


def _expected_source(name: str) -> AlertSource:
    if name.startswith("alertmanager") and not name.endswith("request-headers.json"):
        return AlertSource.ALERTMANAGER
    if name.startswith("grafana/"):
        return AlertSource.GRAFANA  # the legacy one too, so that it gets the legacy error
    for source in (AlertSource.PAGERDUTY, AlertSource.DATADOG, AlertSource.OPSGENIE):
        if name.startswith(f"{source.value}/"):
            return source
    return AlertSource.GENERIC


@pytest.mark.parametrize("path", fixture_files("*/*.json"), ids=lambda path: fixture_name(path))
def test_detect_source_of_every_fixture(path: Path) -> None:
    data = parse_json_bytes(path.read_bytes())

    assert detect_source(data) is _expected_source(fixture_name(path))


@pytest.mark.parametrize(
    ("data", "source"),
    [
        pytest.param([], AlertSource.GENERIC, id="array"),
        pytest.param("alerts", AlertSource.GENERIC, id="string"),
        pytest.param({"labels": {"alertname": "X"}}, AlertSource.GENERIC, id="generic-single"),
        pytest.param({"alerts": []}, AlertSource.GENERIC, id="generic-wrapper"),
        pytest.param({"version": "4", "alerts": []}, AlertSource.ALERTMANAGER, id="version-4"),
        pytest.param({"receiver": "", "alerts": []}, AlertSource.ALERTMANAGER, id="receiver"),
        pytest.param({"orgId": 1, "alerts": []}, AlertSource.GRAFANA, id="org-id"),
        pytest.param(
            {"groupKey": "{}:{}", "alerts": [{"panelURL": ""}]},
            AlertSource.GRAFANA,
            id="grafana-alert-keys",
        ),
        pytest.param({"ruleName": "x", "evalMatches": []}, AlertSource.GRAFANA, id="legacy"),
        pytest.param(
            {"event": {"event_type": "pagey.ping"}}, AlertSource.PAGERDUTY, id="pagerduty"
        ),
        pytest.param({"event": {"id": "x"}}, AlertSource.GENERIC, id="event-without-type"),
        pytest.param({"action": "Close", "alert": {}}, AlertSource.OPSGENIE, id="opsgenie"),
        pytest.param({"action": "Close"}, AlertSource.GENERIC, id="action-without-alert"),
        pytest.param({"alert_transition": "Recovered"}, AlertSource.DATADOG, id="datadog"),
        pytest.param(
            {"event_type": "metric_alert_monitor", "title": "t", "body": "b"},
            AlertSource.DATADOG,
            id="datadog-default-template",
        ),
        pytest.param({"alerts": [], "alert_cycle_key": "k"}, AlertSource.GENERIC, id="alerts-win"),
    ],
)
def test_detect_source_rules(data: object, source: AlertSource) -> None:
    assert detect_source(data) is source


def test_parse_payload_dispatches_by_source() -> None:
    data = load_fixture("alertmanager-captured/prometheus-firing.json")

    assert parse_payload(AlertSource.ALERTMANAGER, data) == parse_alertmanager(data)
    assert parse_payload(AlertSource.GRAFANA, data).source is AlertSource.GRAFANA
    with pytest.raises(PayloadError) as caught:
        parse_payload(AlertSource.GENERIC, data)
    assert str(caught.value).startswith("this is an Alertmanager or Grafana webhook")
