"""Intake: turn each alert source's webhook payload into canonical :class:`Alert` objects.

The HTTP side reads a body with :func:`parse_json_bytes` and hands it to :func:`parse_payload`
with the source its endpoint stands for; ``ballast replay`` can ask :func:`detect_source`
first. Every problem with a body is a :class:`~bot.errors.PayloadError` naming the field.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from bot.intake.alert import Alert, AlertBatch, AlertSource, AlertStatus
from bot.intake.alertmanager import parse_alertmanager
from bot.intake.datadog import parse_datadog
from bot.intake.generic import parse_generic
from bot.intake.grafana import is_legacy_grafana, parse_grafana
from bot.intake.opsgenie import parse_opsgenie
from bot.intake.pagerduty import parse_pagerduty
from bot.intake.wire import parse_json_bytes

__all__ = [
    "Alert",
    "AlertBatch",
    "AlertSource",
    "AlertStatus",
    "detect_source",
    "parse_alertmanager",
    "parse_datadog",
    "parse_generic",
    "parse_grafana",
    "parse_json_bytes",
    "parse_opsgenie",
    "parse_pagerduty",
    "parse_payload",
]

_PARSERS: dict[AlertSource, Callable[..., AlertBatch]] = {
    AlertSource.ALERTMANAGER: parse_alertmanager,
    AlertSource.GRAFANA: parse_grafana,
    AlertSource.GENERIC: parse_generic,
    AlertSource.PAGERDUTY: parse_pagerduty,
    AlertSource.DATADOG: parse_datadog,
    AlertSource.OPSGENIE: parse_opsgenie,
}

# Group fields only Alertmanager-style payloads have (Grafana's too, so test Grafana first).
_ALERTMANAGER_KEYS = frozenset(
    {"groupKey", "truncatedAlerts", "groupLabels", "commonLabels", "commonAnnotations"}
    | {"externalURL", "receiver"}
)
_GRAFANA_ALERT_KEYS = frozenset({"silenceURL", "dashboardURL", "panelURL", "valueString"})


def parse_payload(source: AlertSource, data: object, *, now: datetime | None = None) -> AlertBatch:
    """Parse a decoded body as ``source`` sends it; raises PayloadError naming the bad field.

    ``now`` is when it was received (default: the clock), for times the sender left out.
    """
    return _PARSERS[source](data, now=now)


def detect_source(data: object) -> AlertSource:
    """Guess who sent a decoded body, for replays of recorded payloads.

    Grafana is tested first because its payload is Alertmanager's plus ``orgId``, ``state`` and
    per-alert links; a legacy Grafana notification counts as Grafana, so that parsing it gives
    the error that explains legacy alerting is not supported. PagerDuty's ``event.event_type``,
    Opsgenie's ``action`` with an ``alert`` object and Datadog's template fields are recognised
    before either. Anything unrecognised is generic.
    """
    if not isinstance(data, dict):
        return AlertSource.GENERIC
    if is_pagerduty(data):
        return AlertSource.PAGERDUTY
    if is_opsgenie(data):
        return AlertSource.OPSGENIE
    if is_datadog(data):
        return AlertSource.DATADOG
    if is_legacy_grafana(data):
        return AlertSource.GRAFANA
    alerts = data.get("alerts")
    if alerts is None:
        return AlertSource.GENERIC
    first = alerts[0] if isinstance(alerts, list) and alerts else None
    grafana_alert = isinstance(first, dict) and not _GRAFANA_ALERT_KEYS.isdisjoint(first)
    if "orgId" in data or "state" in data or grafana_alert:
        return AlertSource.GRAFANA
    if data.get("version") == "4" or not _ALERTMANAGER_KEYS.isdisjoint(data):
        return AlertSource.ALERTMANAGER
    return AlertSource.GENERIC


def is_pagerduty(data: dict[str, object]) -> bool:
    """A PagerDuty V3 webhook: ``{"event": {"event_type": ...}}``."""
    event = data.get("event")
    return isinstance(event, dict) and "event_type" in event


def is_opsgenie(data: dict[str, object]) -> bool:
    """An Opsgenie webhook: ``{"action": ..., "alert": {...}}``."""
    return "action" in data and isinstance(data.get("alert"), dict)


# Fields only a Datadog template fills in (Ballast's documented one, the default one, others).
_DATADOG_KEYS = frozenset({"alert_transition", "alert_cycle_key", "aggreg_key", "event_tags"})


def is_datadog(data: dict[str, object]) -> bool:
    """A Datadog webhook: a transition or cycle key, or the default template's fields."""
    if "alerts" in data:
        return False
    return not _DATADOG_KEYS.isdisjoint(data) or {"event_type", "title", "body"} <= data.keys()
