"""Datadog's Webhooks integration into canonical alerts.

Datadog posts whatever JSON the integration's payload template makes of its ``$VARIABLES``
(values substituted as strings), so the body is not one fixed shape: Ballast documents the
template to use (docs/webhooks.md) and also reads the default template and custom ones seen in
the wild, field by field, all optional but the time:

- **status**: ``alert_transition`` (``$ALERT_TRANSITION``): ``Recovered`` is resolved;
  ``Triggered``, ``Re-Triggered``, ``Warn``, ``Re-Warn``, ``No Data``, ``Re-No Data`` and
  ``Renotify`` fire. Without it, the ``[Recovered on …]``/``[Triggered]`` prefix Datadog puts
  on the event ``title``, then ``alert_type`` (``success`` is resolved) decide.
- **time**: ``date`` (``$DATE``, epoch milliseconds), else ``last_updated``. A resolve starts
  and ends at its own time, so it always ends the occurrence before it.
- **labels**: every tag of ``tags`` (``$TAGS``; ``event_tags`` in older templates) and
  ``alert_scope`` (``$ALERT_SCOPE``): ``key:value`` → ``key="value"``, a tag without a value →
  ``tag="true"``, several values of one key joined with commas in the order sent. Then
  ``alertname`` (the monitor's title without Datadog's ``[Triggered on …]`` prefix),
  ``severity`` (``$ALERT_PRIORITY``: P1/P2 critical, P3 warning, P4/P5 info) unless a tag of
  that name was sent. ``service`` is the ``service:`` tag (Datadog's unified service tagging).
- **fingerprint**: ``datadog:`` + ``alert_cycle_key`` (``$ALERT_CYCLE_KEY``, the same from
  trigger to recovery), else ``aggreg_key``, else computed from the labels.

A value still reading ``$SOMETHING`` is a variable Datadog had nothing for: it counts as absent.
"""

from __future__ import annotations

import re
from datetime import datetime

from pydantic import BaseModel, ConfigDict, ValidationError

from bot.errors import PayloadError
from bot.intake.alert import Alert, AlertBatch, AlertSource, AlertStatus, label_fingerprint
from bot.intake.limits import MAX_URL_CHARS, Alteration, bound_alert, bound_text, record
from bot.intake.wire import (
    TemplateText,
    describe,
    parse_epoch,
    payload_error,
    severity_of_priority,
)

FIRING_TRANSITIONS = frozenset(
    {"triggered", "re-triggered", "warn", "re-warn", "no data", "re-no data", "renotify"}
)
RESOLVED_TRANSITIONS = frozenset({"recovered"})
DEFAULT_ALERTNAME = "DatadogMonitor"
TRANSITION_HINT = (
    'add "alert_transition": "$ALERT_TRANSITION" to the webhook\'s payload template '
    "(docs/webhooks.md)"
)
_PLACEHOLDER = re.compile(r"\$[A-Z][A-Z0-9_]*")
# "[P1] [Triggered on {host:a}] Title", "[Recovered] Title", "[TEST] …" stays.
_PREFIX = re.compile(
    r"^(?:\s*\[(?:P\d|(?P<transition>Recovered|Triggered|Re-Triggered|Warn|Re-Warn|No Data|"
    r"Re-No Data|Renotify)(?: on [^\]]*)?)\])+\s*",
    re.IGNORECASE,
)


class Organisation(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: TemplateText | None = None
    name: TemplateText | None = None


class DatadogWebhook(BaseModel):
    """The fields Ballast reads, by the names of its documented template (docs/webhooks.md)."""

    model_config = ConfigDict(extra="ignore")

    id: TemplateText | None = None
    event_id: TemplateText | None = None
    alert_id: TemplateText | None = None
    alert_cycle_key: TemplateText | None = None
    aggreg_key: TemplateText | None = None
    alert_transition: TemplateText | None = None
    alert_type: TemplateText | None = None
    alert_title: TemplateText | None = None
    alert_status: TemplateText | None = None
    alert_priority: TemplateText | None = None
    alert_query: TemplateText | None = None
    alert_scope: TemplateText | None = None
    alert_metric: TemplateText | None = None
    event_type: TemplateText | None = None
    title: TemplateText | None = None
    body: TemplateText | None = None
    date: TemplateText | None = None
    last_updated: TemplateText | None = None
    tags: TemplateText | None = None
    event_tags: TemplateText | None = None
    link: TemplateText | None = None
    hostname: TemplateText | None = None
    org: Organisation | None = None


def parse_datadog(data: object, *, now: datetime | None = None) -> AlertBatch:
    """Validate one decoded Datadog webhook body; raise PayloadError naming the bad field.

    ``now`` is not used: Datadog's ``$DATE`` is required, so a retry is a duplicate.
    """
    del now
    try:
        hook = DatadogWebhook.model_validate(data)
    except ValidationError as err:
        raise payload_error(err) from None
    values = {name: _filled(value) for name, value in hook.model_dump().items() if name != "org"}
    status = _status(values)
    when_field = "date" if values["date"] else "last_updated"
    when = values[when_field]
    if when is None:
        raise PayloadError(
            'required field is missing: add "date": "$DATE" to the webhook\'s payload template',
            "date",
        )
    try:
        starts_at = parse_epoch(when)
    except ValueError as err:
        raise PayloadError(str(err), when_field) from None
    labels = _labels(values)
    annotations = _annotations(values, hook.org)
    altered: list[Alteration] = []
    labels, annotations = bound_alert(labels, annotations, altered)
    key = values["alert_cycle_key"] or values["aggreg_key"]
    fingerprint = bound_text(
        f"datadog:{key}" if key else f"datadog:{label_fingerprint(labels)}",
        128,
        "alert_cycle_key",
        altered,
    )
    link = bound_text(values["link"], MAX_URL_CHARS, "link", altered)
    resolved = status is AlertStatus.RESOLVED
    alert = Alert(
        fingerprint=fingerprint or "",
        status=status,
        labels=labels,
        annotations=record(annotations, altered),
        starts_at=starts_at,
        ends_at=starts_at if resolved else None,
        generator_url=link or None,
        source=AlertSource.DATADOG,
    )
    return AlertBatch(source=AlertSource.DATADOG, alerts=[alert], alterations=tuple(altered))


def _filled(value: object) -> str | None:
    """The value, or None where Datadog left it empty or left the ``$VARIABLE`` in place."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text or _PLACEHOLDER.fullmatch(text):
        return None
    return value


def _status(values: dict[str, str | None]) -> AlertStatus:
    transition = values["alert_transition"]
    if transition is not None:
        key = transition.strip().lower()
        if key in RESOLVED_TRANSITIONS:
            return AlertStatus.RESOLVED
        if key in FIRING_TRANSITIONS:
            return AlertStatus.FIRING
        raise PayloadError(
            "expected one of Recovered, Triggered, Re-Triggered, Warn, Re-Warn, No Data, "
            f"Re-No Data, Renotify, got {describe(transition)}",
            "alert_transition",
        )
    for title in (values["title"], values["alert_title"]):
        found = _PREFIX.match(title or "")
        if found and found.group("transition"):
            resolved = found.group("transition").lower() in RESOLVED_TRANSITIONS
            return AlertStatus.RESOLVED if resolved else AlertStatus.FIRING
    alert_type = (values["alert_type"] or "").strip().lower()
    if alert_type == "success":
        return AlertStatus.RESOLVED
    if alert_type in ("error", "warning"):
        return AlertStatus.FIRING
    raise PayloadError(
        f"cannot tell a trigger from a recovery: {TRANSITION_HINT}", "alert_transition"
    )


def _tags(text: str | None) -> list[tuple[str, str]]:
    pairs = []
    for tag in (text or "").split(","):
        tag = tag.strip()
        if not tag:
            continue
        name, sep, value = tag.partition(":")
        if not name:
            continue
        pairs.append((name, value if sep else "true"))
    return pairs


def _labels(values: dict[str, str | None]) -> dict[str, str]:
    grouped: dict[str, list[str]] = {}
    for field in ("tags", "event_tags", "alert_scope"):
        for name, value in _tags(values[field]):
            seen = grouped.setdefault(name, [])
            if value not in seen:
                seen.append(value)
    labels = {name: ",".join(sent) for name, sent in grouped.items()}
    if "alertname" not in labels:
        labels["alertname"] = _title(values) or DEFAULT_ALERTNAME
    severity = severity_of_priority(values["alert_priority"])
    if "severity" not in labels and severity is not None:
        labels["severity"] = severity
    return labels


def _title(values: dict[str, str | None]) -> str | None:
    for title in (values["alert_title"], values["title"]):
        if title:
            bare = _PREFIX.sub("", title, count=1).strip()
            if bare:
                return bare
    return None


def _annotations(values: dict[str, str | None], org: Organisation | None) -> dict[str, str]:
    body = values["body"]
    if body is not None:  # Datadog wraps Markdown in %%% markers
        body = body.strip().removeprefix("%%%").removesuffix("%%%").strip() or None
    names = {
        "summary": values["title"] or values["alert_title"],
        "description": body,
        "datadog_url": values["link"],
        "datadog_transition": values["alert_transition"],
        "datadog_alert_type": values["alert_type"],
        "datadog_alert_status": values["alert_status"],
        "datadog_priority": values["alert_priority"],
        "datadog_query": values["alert_query"],
        "datadog_metric": values["alert_metric"],
        "datadog_scope": values["alert_scope"],
        "datadog_monitor_id": values["alert_id"],
        "datadog_event_id": values["id"] or values["event_id"],
        "datadog_event_type": values["event_type"],
        "datadog_hostname": values["hostname"],
        "datadog_org": _filled(org.name) if org is not None else None,
    }
    return {name: value for name, value in names.items() if value}
