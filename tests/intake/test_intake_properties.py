"""Properties: whatever is posted, only PayloadError escapes; valid bodies round-trip."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from bot.errors import PayloadError
from bot.intake import (
    AlertBatch,
    AlertSource,
    AlertStatus,
    detect_source,
    parse_json_bytes,
    parse_payload,
)

# Keys every format uses, so that generated objects reach past the first missing field.
KEYS = [
    "alerts",
    "status",
    "labels",
    "annotations",
    "startsAt",
    "endsAt",
    "starts_at",
    "ends_at",
    "fingerprint",
    "generatorURL",
    "generator_url",
    "version",
    "groupKey",
    "truncatedAlerts",
    "receiver",
    "externalURL",
    "groupLabels",
    "commonLabels",
    "commonAnnotations",
    "orgId",
    "state",
    "title",
    "message",
    "values",
    "valueString",
    "dashboardURL",
    "panelURL",
    "silenceURL",
    "imageURL",
    "evalMatches",
    "ruleName",
    "alertname",
    "event",
    "event_type",
    "occurred_at",
    "data",
    "id",
    "service",
    "summary",
    "urgency",
    "action",
    "alert",
    "body",
    "alertId",
    "createdAt",
    "updatedAt",
    "tags",
    "entity",
    "priority",
    "alert_transition",
    "alert_cycle_key",
    "date",
    "last_updated",
    "alert_scope",
]
PLAUSIBLE = (
    "firing",
    "resolved",
    "4",
    "2024-05-01T12:00:00Z",
    "2024-05-01T12:00:00.123456789+02:00",
    "0001-01-01T00:00:00Z",
    "0001-01-01T00:30:00+01:00",
    "9999-12-31T23:59:59-01:00",
    "2024-02-30T00:00:00Z",
    "",
    "incident.triggered",
    "incident.resolved",
    "incident.reopened",
    "incident.acknowledged",
    "Create",
    "Close",
    "AddNote",
    "Recovered",
    "Triggered",
    "[Recovered on {host:a}] x",
    "1448435530000",
    "$DATE",
    "env:prod,monitor,a:b:c",
)

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(PLAUSIBLE)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), inner, max_size=6)
    ),
    max_leaves=25,
)
string_maps = st.dictionaries(st.text(max_size=8), st.text(max_size=8) | scalars, max_size=4)
alert_like = st.fixed_dictionaries(
    {},
    optional={
        "status": st.sampled_from(["firing", "resolved", "pending"]) | scalars,
        "labels": string_maps | json_values,
        "annotations": string_maps | json_values,
        "startsAt": st.sampled_from(PLAUSIBLE) | scalars,
        "endsAt": st.sampled_from(PLAUSIBLE) | scalars,
        "starts_at": st.sampled_from(PLAUSIBLE) | scalars,
        "ends_at": st.sampled_from(PLAUSIBLE) | scalars,
        "fingerprint": scalars,
        "generatorURL": scalars,
        "dashboardURL": scalars,
        "valueString": scalars,
        "values": json_values,
    },
)
payload_like = st.fixed_dictionaries(
    {"alerts": st.lists(alert_like, max_size=4) | json_values},
    optional={
        "version": scalars,
        "groupKey": scalars,
        "truncatedAlerts": scalars,
        "receiver": scalars,
        "orgId": scalars,
        "groupLabels": string_maps | json_values,
    },
)
pagerduty_like = st.fixed_dictionaries(
    {
        "event": st.fixed_dictionaries(
            {},
            optional={
                "event_type": st.sampled_from(PLAUSIBLE) | scalars,
                "occurred_at": st.sampled_from(PLAUSIBLE) | scalars,
                "agent": json_values,
                "data": st.fixed_dictionaries(
                    {},
                    optional={
                        "id": scalars,
                        "title": scalars,
                        "html_url": scalars,
                        "number": scalars,
                        "urgency": st.sampled_from(["high", "low"]) | scalars,
                        "service": json_values,
                        "priority": json_values,
                        "assignees": json_values,
                    },
                )
                | json_values,
            },
        )
        | json_values
    }
)
epochs = st.integers(min_value=-1, max_value=2**64) | st.sampled_from(PLAUSIBLE) | scalars
opsgenie_like = st.fixed_dictionaries(
    {
        "action": st.sampled_from(["Create", "Close", "Acknowledge", "AddNote"]) | scalars,
        "alert": st.fixed_dictionaries(
            {},
            optional={
                "alertId": scalars,
                "message": scalars,
                "entity": scalars,
                "priority": scalars,
                "tags": json_values,
                "details": string_maps | json_values,
                "createdAt": epochs,
                "updatedAt": epochs,
            },
        )
        | json_values,
    }
)
datadog_like = st.fixed_dictionaries(
    {},
    optional={
        "alert_transition": st.sampled_from(PLAUSIBLE) | scalars,
        "alert_cycle_key": scalars,
        "alert_priority": st.sampled_from(["P1", "P3", "3", ""]) | scalars,
        "alert_type": st.sampled_from(["error", "success"]) | scalars,
        "title": st.sampled_from(PLAUSIBLE) | scalars,
        "tags": st.sampled_from(PLAUSIBLE) | scalars,
        "alert_scope": scalars,
        "date": epochs,
        "last_updated": epochs,
        "org": json_values,
    },
)
bodies = json_values | payload_like | alert_like | pagerduty_like | opsgenie_like | datadog_like


def _parse_everywhere(data: object) -> None:
    """Every parser either returns a batch or raises PayloadError; detection never raises."""
    assert isinstance(detect_source(data), AlertSource)
    for source in AlertSource:
        try:
            batch = parse_payload(source, data)
        except PayloadError:
            continue
        assert isinstance(batch, AlertBatch)
        for alert in batch.alerts:
            assert alert.fingerprint
            assert alert.starts_at.tzinfo is UTC
            assert alert.status is AlertStatus.RESOLVED or alert.ends_at is None


@given(bodies)
def test_any_json_value_gives_a_batch_or_payload_error(data: Any) -> None:
    _parse_everywhere(data)


@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_any_bytes_give_a_value_or_payload_error(body: bytes) -> None:
    try:
        data = parse_json_bytes(body)
    except PayloadError:
        return
    _parse_everywhere(data)


def _as_read(data: Any) -> Any:
    """``data`` as parse_json_bytes reads it back: integers beyond 64 bits become floats."""
    if isinstance(data, bool):
        return data
    if isinstance(data, int) and not -(2**63) <= data < 2**64:
        return float(data)
    if isinstance(data, dict):
        return {key: _as_read(value) for key, value in data.items()}
    if isinstance(data, list):
        return [_as_read(item) for item in data]
    return data


@given(bodies)
@example({"truncatedAlerts": 2**64, "n": [2**64 - 1, -(2**63), -(2**63) - 1]})
@example({"note": "nul\x00byte", "lone": "\ud800"})
def test_serialised_json_reads_back_unchanged(data: Any) -> None:
    """Every JSON value reads back as it was written (integers beyond 64 bits as floats), NUL
    and lone surrogates included: the parsers make those storable where they keep them
    (tests/security/test_poison_alerts.py), so decoding never refuses them."""
    body = json.dumps(data, ensure_ascii=True).encode()
    read = parse_json_bytes(body)
    assert read == _as_read(data)
    assert json.dumps(read) == json.dumps(_as_read(data))  # same types, not only equal


# Valid Alertmanager payloads, as a real one would be written by Go's RFC3339Nano.
offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
instants = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(2100, 1, 1), timezones=offsets
)


@st.composite
def rfc3339(draw: st.DrawFn, value: datetime) -> str:
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond or draw(st.booleans()):
        nanos = draw(st.sampled_from(["", "000", "999"]))
        text += f".{value.microsecond:06d}{nanos}"
    offset = value.utcoffset()
    assert offset is not None
    if offset == timedelta(0) and draw(st.booleans()):
        return text + "Z"
    return text + value.strftime("%z")[:3] + ":" + value.strftime("%z")[3:]


# What a sender may put in a label or annotation: any text but U+0000 (refused, see above).
storable_text = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"))


@st.composite
def alertmanager_alerts(draw: st.DrawFn) -> tuple[dict[str, Any], datetime, datetime | None]:
    labels = draw(
        st.dictionaries(storable_text.filter(bool), storable_text, min_size=1, max_size=8)
    )
    starts_at = draw(instants)
    ends_at = draw(st.none() | instants.filter(lambda end: end >= starts_at))
    alert = {
        "status": "firing" if ends_at is None else "resolved",
        "labels": labels,
        "annotations": draw(st.dictionaries(storable_text, storable_text, max_size=4)),
        "startsAt": draw(rfc3339(starts_at)),
        "endsAt": "0001-01-01T00:00:00Z" if ends_at is None else draw(rfc3339(ends_at)),
        "generatorURL": draw(st.sampled_from(["", "http://prometheus:9090/graph?g0.expr=up"])),
        "fingerprint": draw(st.from_regex(r"[0-9a-f]{16}", fullmatch=True)),
    }
    return alert, starts_at, ends_at


@given(st.lists(alertmanager_alerts(), max_size=6), st.integers(min_value=0, max_value=50))
def test_valid_alertmanager_payload_round_trips(
    generated: list[tuple[dict[str, Any], datetime, datetime | None]], truncated: int
) -> None:
    sent = [alert for alert, _, _ in generated]
    payload = {
        "version": "4",
        "groupKey": "{}:{}",
        "truncatedAlerts": truncated,
        "status": "firing",
        "receiver": "ballast",
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": sent,
    }
    data = parse_json_bytes(json.dumps(payload).encode())

    assert detect_source(data) is AlertSource.ALERTMANAGER
    batch = parse_payload(AlertSource.ALERTMANAGER, data)

    assert batch.truncated_alerts == truncated
    assert len(batch.alerts) == len(generated)
    for alert, (wire, starts_at, ends_at) in zip(batch.alerts, generated, strict=True):
        assert alert.labels == wire["labels"]
        assert list(alert.labels) == list(wire["labels"])
        assert alert.annotations == wire["annotations"]
        assert alert.fingerprint == wire["fingerprint"]
        assert alert.status.value == wire["status"]
        assert alert.starts_at == starts_at
        assert alert.starts_at.tzinfo is UTC
        assert alert.ends_at == ends_at


label_names = st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,20}", fullmatch=True)


@given(st.dictionaries(label_names, st.text(max_size=50), max_size=10), st.text(min_size=1))
def test_valid_generic_alert_round_trips(labels: dict[str, str], alertname: str) -> None:
    labels = {**labels, "alertname": alertname}

    (alert,) = parse_payload(AlertSource.GENERIC, {"alerts": [{"labels": labels}]}).alerts

    storable = {name: value.replace("\x00", "\ufffd") for name, value in labels.items()}
    assert alert.labels == storable
    assert ("ballast_intake" in alert.annotations) == (storable != labels)
    assert alert.status is AlertStatus.FIRING
