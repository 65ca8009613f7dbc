"""Alertmanager's webhook (``webhook_configs``, payload version 4) into canonical alerts.

Strict about what Ballast relies on: every alert needs ``status``, ``labels`` and
``startsAt`` (deduplication is on fingerprint + start), labels and annotations must map strings
to strings, times must be RFC 3339. Lenient where real senders differ:

- ``version`` is not checked. Alertmanager sends ``"4"``, its own exec-notifier test data says
  ``"1"`` and Grafana says ``"1"``; what is validated is the shape, and the shape has not changed.
- ``fingerprint`` missing, null or empty (older senders) is computed from the labels.
- ``groupKey``, ``receiver`` (may be ``""``), ``externalURL`` and ``truncatedAlerts`` may be
  absent; ``annotations`` and the group label maps may be null. Unknown fields are ignored.

Each alert's own ``status`` wins over the group's: a ``firing`` group can carry alerts that have
resolved. A firing alert's ``ends_at`` is always None (Alertmanager hides a firing alert's
planned end behind the Go zero time); ``truncatedAlerts`` is kept, because the alerts that
``max_alerts`` cut off are still firing, not resolved.
"""

from __future__ import annotations

from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from bot.errors import PayloadError
from bot.intake.alert import Alert, AlertBatch, AlertSource, AlertStatus, label_fingerprint
from bot.intake.wire import LONE_SURROGATE, EndTime, Fingerprint, StartTime, payload_error

# Label names are not restricted to [a-zA-Z_][a-zA-Z0-9_]*: recent Alertmanager releases and
# Grafana allow any UTF-8 name. They only have to be non-empty.
LabelName = Annotated[str, StringConstraints(min_length=1)]
MAX_TRUNCATED = 2**31 - 1


class WireAlert(BaseModel):
    """One entry of ``alerts[]`` as Alertmanager sends it."""

    model_config = ConfigDict(extra="ignore")

    status: AlertStatus
    labels: dict[LabelName, str]
    annotations: dict[str, str] | None = None
    starts_at: StartTime = Field(alias="startsAt")
    ends_at: EndTime = Field(default=None, alias="endsAt")
    generator_url: str | None = Field(default=None, alias="generatorURL")
    fingerprint: Fingerprint | None = None


AlertT = TypeVar("AlertT", bound=WireAlert)


class WireWebhook(BaseModel, Generic[AlertT]):
    """The whole notification: one group of alerts for one receiver (Grafana: its own alerts)."""

    model_config = ConfigDict(extra="ignore")

    alerts: list[AlertT]
    status: AlertStatus | None = None
    receiver: str | None = None
    group_key: str | None = Field(default=None, alias="groupKey")
    external_url: str | None = Field(default=None, alias="externalURL")
    # At most what a database INTEGER holds: a count beyond it is the sender's error (422), not
    # a write that fails on every retry.
    truncated_alerts: int = Field(
        default=0, ge=0, le=MAX_TRUNCATED, strict=True, alias="truncatedAlerts"
    )
    group_labels: dict[str, str] | None = Field(default=None, alias="groupLabels")
    common_labels: dict[str, str] | None = Field(default=None, alias="commonLabels")
    common_annotations: dict[str, str] | None = Field(default=None, alias="commonAnnotations")


AlertmanagerWebhook = WireWebhook[WireAlert]


def parse_alertmanager(data: object) -> AlertBatch:
    """Validate one decoded Alertmanager webhook body; raise PayloadError naming the bad field."""
    try:
        webhook = AlertmanagerWebhook.model_validate(data)
    except ValidationError as err:
        raise payload_error(err) from None
    source = AlertSource.ALERTMANAGER
    try:
        alerts = [canonical(alert, alert.annotations, source) for alert in webhook.alerts]
    except UnicodeEncodeError:  # only reachable for data that did not come via parse_json_bytes
        raise PayloadError(LONE_SURROGATE) from None
    return batch_of(webhook, alerts, source)


def canonical(alert: WireAlert, annotations: dict[str, str] | None, source: AlertSource) -> Alert:
    """The canonical Alert for a validated wire alert (shared with the Grafana parser)."""
    resolved = alert.status is AlertStatus.RESOLVED
    return Alert(
        fingerprint=alert.fingerprint or label_fingerprint(alert.labels),
        status=alert.status,
        labels=alert.labels,
        annotations=annotations if annotations is not None else {},
        starts_at=alert.starts_at,
        ends_at=alert.ends_at if resolved else None,
        generator_url=alert.generator_url or None,
        source=source,
    )


def batch_of(webhook: WireWebhook[Any], alerts: list[Alert], source: AlertSource) -> AlertBatch:
    return AlertBatch(
        source=source,
        alerts=alerts,
        group_key=webhook.group_key,
        receiver=webhook.receiver,
        external_url=webhook.external_url or None,
        truncated_alerts=webhook.truncated_alerts,
    )
