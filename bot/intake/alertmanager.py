"""Alertmanager's webhook (``webhook_configs``, payload version 4) into canonical alerts.

Strict about what Ballast relies on: every alert needs ``status``, ``labels`` and
``startsAt`` (deduplication is on fingerprint + start), labels and annotations must map strings
to strings, times must be RFC 3339. Lenient where real senders differ:

- ``version`` is not checked. Alertmanager sends ``"4"``, its own exec-notifier test data says
  ``"1"`` and Grafana says ``"1"``; what is validated is the shape, and the shape has not changed.
- ``fingerprint`` missing, null or empty (older senders) is computed from the labels.
- ``startsAt`` as the Go zero time (Grafana's test notifications) means "not given": the
  receive time is used.
- No value is refused for its size or characters: see :mod:`bot.intake.limits`.
- ``groupKey``, ``receiver`` (may be ``""``), ``externalURL`` and ``truncatedAlerts`` may be
  absent; ``annotations`` and the group label maps may be null. Unknown fields are ignored.

Each alert's own ``status`` wins over the group's: a ``firing`` group can carry alerts that have
resolved. A firing alert's ``ends_at`` is always None (Alertmanager hides a firing alert's
planned end behind the Go zero time); ``truncatedAlerts`` is kept, because the alerts that
``max_alerts`` cut off are still firing, not resolved.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from bot.intake.alert import Alert, AlertBatch, AlertSource, AlertStatus, label_fingerprint
from bot.intake.limits import (
    MAX_ANNOTATION_VALUE_CHARS,
    MAX_URL_CHARS,
    Alteration,
    bound_alert,
    bound_text,
    record,
)
from bot.intake.wire import EndTime, Fingerprint, StartTime, payload_error

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


def parse_alertmanager(data: object, *, now: datetime | None = None) -> AlertBatch:
    """Validate one decoded Alertmanager webhook body; raise PayloadError naming the bad field.

    ``now`` (default: the clock) is the receive time, used for a start given as the zero time.
    """
    try:
        webhook = AlertmanagerWebhook.model_validate(data)
    except ValidationError as err:
        raise payload_error(err) from None
    source = AlertSource.ALERTMANAGER
    now = now or datetime.now(UTC)
    altered: list[Alteration] = []
    alerts = [canonical(alert, alert.annotations, source, now, altered) for alert in webhook.alerts]
    return batch_of(webhook, alerts, source, altered)


def canonical(
    alert: WireAlert,
    annotations: dict[str, str] | None,
    source: AlertSource,
    now: datetime,
    altered: list[Alteration],
) -> Alert:
    """The canonical Alert for a validated wire alert (shared with the Grafana parser).

    Values are bounded and made storable (:mod:`bot.intake.limits`); what changed is appended
    to ``altered`` and listed in the alert's ``ballast_intake`` annotation.
    """
    resolved = alert.status is AlertStatus.RESOLVED
    mine: list[Alteration] = []
    labels, notes = bound_alert(alert.labels, annotations or {}, mine)
    fingerprint = bound_text(alert.fingerprint, 128, "fingerprint", mine)
    generator_url = bound_text(alert.generator_url, MAX_URL_CHARS, "generatorURL", mine)
    ends_at = alert.ends_at if resolved else None
    starts_at = alert.starts_at
    if starts_at is None:  # the zero time: not given, so when it was received
        starts_at = min(now, ends_at) if ends_at is not None else now
    altered.extend(mine)
    return Alert(
        fingerprint=fingerprint or label_fingerprint(labels),
        status=alert.status,
        labels=labels,
        annotations=record(notes, mine),
        starts_at=starts_at,
        ends_at=ends_at,
        generator_url=generator_url or None,
        source=source,
    )


def batch_of(
    webhook: WireWebhook[Any],
    alerts: list[Alert],
    source: AlertSource,
    altered: list[Alteration],
) -> AlertBatch:
    return AlertBatch(
        source=source,
        alerts=alerts,
        group_key=bound_text(webhook.group_key, MAX_ANNOTATION_VALUE_CHARS, "groupKey", altered),
        receiver=webhook.receiver,
        external_url=webhook.external_url or None,
        truncated_alerts=webhook.truncated_alerts,
        alterations=tuple(altered),
    )
