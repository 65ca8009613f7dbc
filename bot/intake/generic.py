"""The generic JSON form, for any sender that is neither Alertmanager nor Grafana.

A body is ``{"alerts": [ALERT, ...]}`` or one ALERT object on its own::

    {"labels": {"alertname": "GroundednessLow", "service": "support-assistant"},
     "annotations": {"summary": "Groundedness 0.41 < 0.5"},
     "status": "firing", "starts_at": "2024-05-01T12:00:00Z"}

Only ``labels`` (with a non-empty ``alertname``: triage groups by it) is required; the rest
defaults as documented in ``docs/webhooks.md``. This is Ballast's own format, so it is strict
where the sources it mirrors are lenient: unknown fields are errors (a misspelt ``ends_at``
would turn a resolve into a page), names must be Prometheus label names, and values must be
strings: ``3`` and ``true`` are refused rather than coerced, because matchers compare text and
a silent ``"3.0"`` or ``"True"`` would stop a runbook from matching.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from bot.errors import PayloadError
from bot.intake.alert import Alert, AlertBatch, AlertSource, AlertStatus, label_fingerprint
from bot.intake.grafana import LEGACY_MESSAGE, is_legacy_grafana
from bot.intake.limits import MAX_URL_CHARS, Alteration, bound_alert, bound_text, record
from bot.intake.wire import EndTime, StartTime, describe, payload_error

MAX_ALERTS = 1_000
MAX_ENTRIES = 100  # labels, and annotations, per alert
MAX_NAME_CHARS = 256
NAME_PATTERN = r"^[a-zA-Z_][a-zA-Z0-9_]*$"

Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN, max_length=MAX_NAME_CHARS)]


class GenericAlert(BaseModel):
    model_config = ConfigDict(extra="forbid")

    labels: Annotated[dict[Name, str], Field(max_length=MAX_ENTRIES)]
    annotations: Annotated[dict[Name, str], Field(max_length=MAX_ENTRIES)] = {}
    status: AlertStatus | None = None
    starts_at: StartTime | None = None
    ends_at: EndTime = None
    fingerprint: Annotated[str, StringConstraints(min_length=1, max_length=128)] | None = None
    generator_url: str | None = None


class GenericBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    alerts: Annotated[list[GenericAlert], Field(max_length=MAX_ALERTS)]


ALERT_FIELDS = tuple(GenericAlert.model_fields)


def parse_generic(data: object, *, now: datetime | None = None) -> AlertBatch:
    """Validate a generic body; ``now`` (default: the clock) fills the time defaults."""
    if not isinstance(data, dict):
        raise PayloadError(
            'expected a JSON object, either {"alerts": [...]} or a single alert, '
            f"got {describe(data)}"
        )
    wrapped = "alerts" in data
    try:
        if wrapped:
            alerts = GenericBatch.model_validate(data).alerts
        else:
            alerts = [GenericAlert.model_validate(data)]
    except ValidationError as err:
        hint = _wrapper_hint if wrapped else _alert_hint
        raise _foreign_format_error(data) or payload_error(err, unknown_field=hint) from None
    now = now or datetime.now(UTC)
    altered: list[Alteration] = []
    canonical = [
        _canonical(alert, f"alerts[{i}]." if wrapped else "", now, altered)
        for i, alert in enumerate(alerts)
    ]
    return AlertBatch(source=AlertSource.GENERIC, alerts=canonical, alterations=tuple(altered))


def _canonical(alert: GenericAlert, path: str, now: datetime, altered: list[Alteration]) -> Alert:
    alertname = alert.labels.get("alertname")
    if alertname is None:
        raise PayloadError(
            "required label is missing: every alert needs an alertname label (Ballast groups "
            'and triages by it), e.g. "labels": {"alertname": "GroundednessLow"}',
            f"{path}labels.alertname",
        )
    if not alertname:
        raise PayloadError('expected a non-empty alertname, got ""', f"{path}labels.alertname")
    status = alert.status
    if status is None:
        ended = alert.ends_at is not None and alert.ends_at <= now
        status = AlertStatus.RESOLVED if ended else AlertStatus.FIRING
    resolved = status is AlertStatus.RESOLVED
    starts_at = alert.starts_at
    if starts_at is None:  # "now", but never after the end it reports
        starts_at = min(now, alert.ends_at) if alert.ends_at is not None else now
    mine: list[Alteration] = []
    labels, annotations = bound_alert(alert.labels, alert.annotations, mine)
    fingerprint = bound_text(alert.fingerprint, 128, "fingerprint", mine)
    generator_url = bound_text(alert.generator_url, MAX_URL_CHARS, "generator_url", mine)
    altered.extend(mine)
    return Alert(
        fingerprint=fingerprint or label_fingerprint(labels),
        status=status,
        labels=labels,
        annotations=record(annotations, mine),
        starts_at=starts_at,
        ends_at=(alert.ends_at or now) if resolved else None,
        generator_url=generator_url or None,
        source=AlertSource.GENERIC,
    )


def _alert_hint(loc: Sequence[int | str]) -> str:
    close = _closest(str(loc[-1]), ALERT_FIELDS)
    guess = f' did you mean "{close}"?' if close else ""
    return f"unknown field;{guess} an alert has only {', '.join(ALERT_FIELDS)}"


def _wrapper_hint(loc: Sequence[int | str]) -> str:
    if len(loc) > 1:  # ("alerts", 3, "startsAt"): a field of one alert
        return _alert_hint(loc)
    return (
        'unknown field; a body with "alerts" has no other top-level field (or send one alert '
        "object without the wrapper)"
    )


def _closest(name: str, choices: tuple[str, ...]) -> str | None:
    """``startsAt``/``StartsAt``/``start_at`` → ``starts_at``: camelCase is the usual slip."""
    flat = {choice.replace("_", ""): choice for choice in choices}
    key = name.lower().replace("_", "").replace("-", "")
    if key in flat:
        return flat[key]
    found = difflib.get_close_matches(key, list(flat), n=1, cutoff=0.8)
    return flat[found[0]] if found else None


# Formats that people point at a generic endpoint by mistake, recognised only after a body has
# failed validation, so that the error names the real problem (and the endpoint to use)
# instead of a missing "labels".
_FOREIGN: tuple[tuple[Callable[[Mapping[str, object]], bool], str], ...] = (
    (
        lambda d: not {"groupKey", "truncatedAlerts", "commonLabels"}.isdisjoint(d),
        "this is an Alertmanager or Grafana webhook, not the generic form: send it to "
        "/webhooks/alertmanager or /webhooks/grafana",
    ),
    (is_legacy_grafana, LEGACY_MESSAGE),
    (
        lambda d: isinstance(event := d.get("event"), dict) and "event_type" in event,
        "this looks like a PagerDuty V3 webhook (event.event_type), not the generic form: "
        "send it to /webhooks/pagerduty",
    ),
    (
        lambda d: "action" in d and isinstance(d.get("alert"), dict),
        "this looks like an Opsgenie webhook (action, alert), not the generic form: send it "
        "to /webhooks/opsgenie",
    ),
    (
        lambda d: "alert_transition" in d or {"event_type", "title", "body"} <= d.keys(),
        "this looks like a Datadog webhook (event_type, title, body), not the generic form: "
        "send it to /webhooks/datadog",
    ),
)


def _foreign_format_error(data: Mapping[str, object]) -> PayloadError | None:
    for matches, message in _FOREIGN:
        if matches(data):
            return PayloadError(message)
    return None
