"""Grafana's unified-alerting webhook contact point into canonical alerts.

Grafana's embedded Alertmanager sends Alertmanager's webhook payload (it says ``version: "1"``)
plus Grafana fields: ``orgId``, ``state``, ``title``, ``message`` on the group and, per alert,
``silenceURL``, ``dashboardURL``, ``panelURL``, ``imageURL``, ``values`` (an object or null)
and ``valueString``. So the same rules apply as in :mod:`bot.intake.alertmanager`, and the
per-alert links a responder wants are carried into annotations (see :data:`EXTRA_ANNOTATIONS`)
when the sender filled them and the alert does not already have an annotation of that name.
``values`` is not kept: ``valueString`` carries the same numbers with their labels.

Legacy alerting (Grafana 8 and older: ``ruleName``, ``evalMatches``, no ``alerts``) has one
alert per rule without labels to match on; it is refused with a message saying what to use.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import Field, ValidationError

from bot.errors import PayloadError
from bot.intake.alert import AlertBatch, AlertSource
from bot.intake.alertmanager import WireAlert, WireWebhook, batch_of, canonical
from bot.intake.limits import Alteration
from bot.intake.wire import payload_error

LEGACY_MESSAGE = (
    "this is a legacy Grafana alert notification (Grafana 8 and older: it has "
    '"ruleName"/"evalMatches" and no "alerts" array). Legacy dashboard alerting is not '
    "supported: in Grafana, use unified alerting and add a contact point of type Webhook "
    "whose URL is Ballast's /webhooks/grafana"
)
# Keys only legacy notifications have; unified ones always have "alerts".
LEGACY_KEYS = frozenset({"evalMatches", "ruleName", "ruleId", "ruleUrl"})

# Grafana per-alert field → annotation name it is copied to.
EXTRA_ANNOTATIONS = {
    "dashboard_url": "grafana_dashboard_url",
    "panel_url": "grafana_panel_url",
    "silence_url": "grafana_silence_url",
    "image_url": "grafana_image_url",
    "value_string": "grafana_value_string",
}


class GrafanaWireAlert(WireAlert):
    """An Alertmanager alert plus Grafana's links and evaluated values."""

    silence_url: str | None = Field(default=None, alias="silenceURL")
    dashboard_url: str | None = Field(default=None, alias="dashboardURL")
    panel_url: str | None = Field(default=None, alias="panelURL")
    image_url: str | None = Field(default=None, alias="imageURL")
    value_string: str | None = Field(default=None, alias="valueString")


# Group fields Grafana adds (orgId, state, title, message) are not used.
GrafanaWebhook = WireWebhook[GrafanaWireAlert]


def parse_grafana(data: object, *, now: datetime | None = None) -> AlertBatch:
    """Validate one decoded Grafana webhook body; raise PayloadError naming the bad field."""
    if is_legacy_grafana(data):
        raise PayloadError(LEGACY_MESSAGE)
    try:
        webhook = GrafanaWebhook.model_validate(data)
    except ValidationError as err:
        raise payload_error(err) from None
    source = AlertSource.GRAFANA
    now = now or datetime.now(UTC)
    altered: list[Alteration] = []
    alerts = [
        canonical(alert, _annotations(alert), source, now, altered) for alert in webhook.alerts
    ]
    return batch_of(webhook, alerts, source, altered)


def is_legacy_grafana(data: object) -> bool:
    return isinstance(data, dict) and "alerts" not in data and not LEGACY_KEYS.isdisjoint(data)


def _annotations(alert: GrafanaWireAlert) -> dict[str, str] | None:
    sent = alert.annotations or {}
    extras = {
        name: value
        for attribute, name in EXTRA_ANNOTATIONS.items()
        if (value := getattr(alert, attribute)) and name not in sent
    }
    return {**sent, **extras} if extras else alert.annotations
