"""PagerDuty V3 webhook subscriptions into canonical alerts, and their signature.

Every delivery is one ``{"event": {...}}``. An incident's life maps onto one alert whose
fingerprint is ``pagerduty:<incident id>``:

- ``incident.triggered`` and ``incident.reopened`` → firing, starting at ``occurred_at``;
- ``incident.resolved`` → resolved, starting and ending at ``occurred_at`` (so it always ends
  the latest occurrence, a reopened one included);
- everything else (``incident.acknowledged``, ``.annotated``, ``.escalated``, service events,
  ``pagey.ping``…) changes nothing about whether the alert fires: an empty batch that says why,
  answered 2xx so PagerDuty does not count it as a failed delivery.

Labels come from fields every incident event carries and that stay the same for the
incident's life, because Ballast routes the resolve by the same labels as the trigger:
``alertname`` (the title), ``service`` (the PagerDuty service's name), ``severity`` (from the
urgency) and ``pagerduty_service_id``. Priority, assignees, the person who acted and the link
are annotations. A redelivery (PagerDuty retries up to four times) is the same body, so it is
stored once.

The signature (``X-PagerDuty-Signature: v1=<hex>,v1=<hex>``) is an HMAC-SHA256 of the raw body
with the subscription's secret; during a secret rotation PagerDuty sends one entry per secret,
and any entry that matches is enough.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError

from bot.errors import PayloadError
from bot.intake.alert import Alert, AlertBatch, AlertSource, AlertStatus
from bot.intake.limits import MAX_URL_CHARS, Alteration, bound_alert, bound_text, record
from bot.intake.wire import StartTime, payload_error

FIRING_EVENTS = frozenset({"incident.triggered", "incident.reopened"})
RESOLVED_EVENTS = frozenset({"incident.resolved"})
URGENCY_SEVERITY = {"high": "critical", "low": "warning"}
DEFAULT_ALERTNAME = "PagerDutyIncident"
SIGNATURE_HEADER = "X-PagerDuty-Signature"


class Reference(BaseModel):
    """A service, user, team, escalation policy or priority as PagerDuty refers to it."""

    model_config = ConfigDict(extra="ignore")

    id: str | None = None
    summary: str | None = None
    html_url: str | None = None


class Incident(BaseModel):
    """``event.data`` of an ``incident.*`` event."""

    model_config = ConfigDict(extra="ignore")

    id: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    html_url: str | None = None
    number: int | None = None
    status: str | None = None
    title: str | None = None
    incident_key: str | None = None
    urgency: str | None = None
    service: Reference | None = None
    priority: Reference | None = None
    escalation_policy: Reference | None = None
    assignees: list[Reference] | None = None
    teams: list[Reference] | None = None


class Event(BaseModel):
    """``event``: the envelope every V3 delivery has; ``data`` is read per event type."""

    model_config = ConfigDict(extra="ignore")

    id: str | None = None
    event_type: Annotated[str, StringConstraints(min_length=1)]
    resource_type: str | None = None
    occurred_at: StartTime = None
    agent: Reference | None = None
    data: object = None


class PagerDutyWebhook(BaseModel):
    """The whole body of a V3 webhook delivery."""

    model_config = ConfigDict(extra="ignore")

    event: Event


def parse_pagerduty(data: object, *, now: datetime | None = None) -> AlertBatch:
    """Validate one decoded V3 webhook body; raise PayloadError naming the bad field.

    ``now`` is accepted for the common signature; a PagerDuty event always says when it
    happened, and that time (not the receive time) is used, so a redelivery is a duplicate.
    """
    del now
    try:
        event = PagerDutyWebhook.model_validate(data).event
    except ValidationError as err:
        raise payload_error(err) from None
    source = AlertSource.PAGERDUTY
    if event.event_type in FIRING_EVENTS:
        status = AlertStatus.FIRING
    elif event.event_type in RESOLVED_EVENTS:
        status = AlertStatus.RESOLVED
    else:
        return AlertBatch(source=source, alerts=[], ignored=_ignored_reason(event.event_type))
    try:
        incident = Incident.model_validate(event.data)
    except ValidationError as err:
        raise payload_error(err, prefix="event.data") from None
    if event.occurred_at is None:
        raise PayloadError(
            'required field is missing: every incident event says when it happened, e.g. "'
            '2021-06-04T13:35:29.781Z"',
            "event.occurred_at",
        )
    altered: list[Alteration] = []
    alert = _canonical(event, incident, status, event.occurred_at, altered)
    return AlertBatch(source=source, alerts=[alert], alterations=tuple(altered))


def _canonical(
    event: Event,
    incident: Incident,
    status: AlertStatus,
    occurred_at: datetime,
    altered: list[Alteration],
) -> Alert:
    labels = {"alertname": incident.title or DEFAULT_ALERTNAME}
    service = incident.service
    if service is not None and service.summary:
        labels["service"] = service.summary
    severity = URGENCY_SEVERITY.get(incident.urgency or "")
    if severity is not None:
        labels["severity"] = severity
    if service is not None and service.id:
        labels["pagerduty_service_id"] = service.id
    annotations = _annotations(event, incident)
    mine: list[Alteration] = []
    labels, annotations = bound_alert(labels, annotations, mine)
    fingerprint = bound_text(f"pagerduty:{incident.id}", 128, "event.data.id", mine) or ""
    link = bound_text(incident.html_url, MAX_URL_CHARS, "event.data.html_url", mine)
    altered.extend(mine)
    resolved = status is AlertStatus.RESOLVED
    return Alert(
        fingerprint=fingerprint,
        status=status,
        labels=labels,
        annotations=record(annotations, mine),
        starts_at=occurred_at,
        ends_at=occurred_at if resolved else None,
        generator_url=link or None,
        source=AlertSource.PAGERDUTY,
    )


def _annotations(event: Event, incident: Incident) -> dict[str, str]:
    names = {
        "summary": incident.title,
        "pagerduty_url": incident.html_url,
        "pagerduty_incident_id": incident.id,
        "pagerduty_incident_number": None if incident.number is None else str(incident.number),
        "pagerduty_incident_key": incident.incident_key,
        "pagerduty_status": incident.status,
        "pagerduty_urgency": incident.urgency,
        "pagerduty_priority": incident.priority.summary if incident.priority else None,
        "pagerduty_escalation_policy": (
            incident.escalation_policy.summary if incident.escalation_policy else None
        ),
        "pagerduty_assignees": _joined(incident.assignees),
        "pagerduty_teams": _joined(incident.teams),
        "pagerduty_agent": event.agent.summary if event.agent else None,
        "pagerduty_event": f"{event.event_type} {event.id}" if event.id else event.event_type,
    }
    return {name: value for name, value in names.items() if value}


def _joined(references: list[Reference] | None) -> str | None:
    return ", ".join(r.summary for r in references or [] if r.summary) or None


def _ignored_reason(event_type: str) -> str:
    if event_type in ("incident.acknowledged", "incident.unacknowledged"):
        return (
            f"{event_type}: an acknowledgement in PagerDuty does not change whether the alert "
            "fires; acknowledge the Ballast incident in Slack or the API"
        )
    if event_type.startswith("incident."):
        return f"{event_type}: does not change whether the incident is open"
    return f"{event_type}: not an incident event"


class SignatureCheck(StrEnum):
    MATCHED = "matched"
    MISSING = "missing"  # no header, or no v1= entry in it
    WRONG = "wrong"  # v1= entries, none made with the configured secret


def check_signature(body: bytes, header: str | None, secret: str) -> SignatureCheck:
    """Whether any ``v1=`` entry of ``header`` is the HMAC-SHA256 of ``body`` with ``secret``.

    Every entry is compared, each in constant time, so the time taken says nothing about
    how close a forged signature came.
    """
    entries = [
        entry.strip()[3:] for entry in (header or "").split(",") if entry.strip().startswith("v1=")
    ]
    if not entries:
        return SignatureCheck.MISSING
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest().encode()
    matched = False
    for entry in entries:
        given = entry.lower().encode("utf-8", "replace")
        matched |= hmac.compare_digest(given, expected)
    return SignatureCheck.MATCHED if matched else SignatureCheck.WRONG


def sign(body: bytes, secret: str) -> str:
    """The header value PagerDuty would send for ``body`` (tests and ``ballast`` tools)."""
    return "v1=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
