"""The canonical alert every source is turned into.

Alertmanager, Grafana, PagerDuty, Datadog, Opsgenie and the generic JSON form all end up as
:class:`Alert`, so nothing after intake needs to know where an alert came from. Alert and
AlertBatch are plain value objects: each source's wire model has validated every value once, as
the sender wrote it (that is where a bad field can be named in the sender's terms); validating
the canonical object a second time was a tenth of a webhook's CPU at the ingest ceiling.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

from bot.intake.limits import Alteration


class AlertStatus(StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"


class AlertSource(StrEnum):
    ALERTMANAGER = "alertmanager"
    GRAFANA = "grafana"
    GENERIC = "generic"
    PAGERDUTY = "pagerduty"
    DATADOG = "datadog"
    OPSGENIE = "opsgenie"


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert as Ballast stores and matches it.

    ``ends_at`` is ``None`` while firing: Alertmanager's ``0001-01-01T00:00:00Z`` and Grafana's
    zero time both mean "not ended" and are normalised by intake. ``fingerprint`` has 1-128
    characters; times are aware UTC.
    """

    fingerprint: str
    status: AlertStatus
    labels: dict[str, str]
    starts_at: datetime
    source: AlertSource
    annotations: dict[str, str] = field(default_factory=dict)
    ends_at: datetime | None = None
    generator_url: str | None = None

    @property
    def alertname(self) -> str:
        return self.labels.get("alertname", "")


class AlertFacts(Protocol):
    """An alert as any stage keeps it: the canonical Alert, an inbox row, an incident's alert."""

    @property
    def fingerprint(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def labels(self) -> Mapping[str, Any]: ...
    @property
    def annotations(self) -> Mapping[str, Any]: ...
    @property
    def starts_at(self) -> datetime: ...
    @property
    def ends_at(self) -> datetime | None: ...
    @property
    def generator_url(self) -> str | None: ...


def template_context(alert: AlertFacts) -> dict[str, object]:
    """What runbook templates see: ``labels``, ``annotations``, ``status`` and times.

    One definition for every stage, so a title rendered by the engine, a param rendered by the
    executor and a dashboard link rendered for Slack all see the same names the loader checks.
    """
    return {
        "labels": dict(alert.labels),
        "annotations": dict(alert.annotations),
        "status": str(alert.status),
        "starts_at": alert.starts_at.isoformat(),
        "ends_at": alert.ends_at.isoformat() if alert.ends_at else None,
        "fingerprint": alert.fingerprint,
        "generator_url": alert.generator_url,
    }


@dataclass(frozen=True, slots=True)
class AlertBatch:
    """What one webhook delivered: the alerts plus the group facts the source sent."""

    source: AlertSource
    alerts: list[Alert]
    group_key: str | None = None
    receiver: str | None = None
    external_url: str | None = None
    # Alerts Alertmanager left out because of max_alerts. They are still firing (or not):
    # a truncated alert must never be read as resolved.
    truncated_alerts: int = 0
    # Values intake had to change (see bot.intake.limits), for the metrics.
    alterations: tuple[Alteration, ...] = ()
    # Why nothing was taken from this delivery: an event that is not a change of an alert's
    # state (a PagerDuty acknowledgement, an Opsgenie note). The sender gets a 2xx saying so.
    ignored: str | None = None


def label_fingerprint(labels: Mapping[str, str]) -> str:
    """A stable fingerprint for sources that do not send one (generic JSON).

    Alertmanager's own fingerprint is a 64-bit FNV over sorted labels; we do not need to be
    byte-compatible with it, only stable, so SHA-256 of the sorted pairs, truncated to 16 hex.
    """
    digest = hashlib.sha256()
    for name in sorted(labels):
        digest.update(name.encode())
        digest.update(b"\xff")
        digest.update(labels[name].encode())
        digest.update(b"\xff")
    return digest.hexdigest()[:16]


ZERO_TIME_YEAR = 1


def normalise_end(value: datetime | None) -> datetime | None:
    """Map the Go zero time (``0001-01-01T00:00:00Z``) that means "still firing" to None."""
    if value is None or value.year <= ZERO_TIME_YEAR:
        return None
    return as_utc(value)


def as_utc(value: datetime) -> datetime:
    """Naive timestamps are taken as UTC; aware ones are converted to it."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)
