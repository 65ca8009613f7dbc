"""Opsgenie's outgoing Webhook integration into canonical alerts.

Every delivery is one action on one Opsgenie alert (``{"action": …, "alert": {…}}``), and the
alert's life maps onto one Ballast alert whose fingerprint is ``opsgenie:<alertId>``:

- ``Create`` → firing, starting at ``alert.createdAt`` (epoch milliseconds);
- ``Close`` → resolved, starting and ending at ``alert.updatedAt`` (epoch nanoseconds: Opsgenie
  mixes units; :func:`~bot.intake.wire.parse_epoch` tells them apart by size);
- ``Acknowledge``, ``UnAcknowledge``, ``AddNote`` and every other action → nothing, answered
  2xx with the reason: an acknowledgement or a note in Opsgenie does not change whether the
  alert fires (notes stay in Opsgenie; Ballast's timeline takes notes from Slack and the API).

Labels are what every action carries and what stays the same for the alert's life, because a
Close is routed to its incident by the same labels as the Create: ``alertname`` (the
``message``) and ``service`` (the ``entity``, when set). Opsgenie sends ``priority``,
``description`` and ``details`` only with some actions and lets responders change tags, so
those are annotations, never labels (a Close without them would miss its incident).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from bot.errors import PayloadError
from bot.intake.alert import Alert, AlertBatch, AlertSource, AlertStatus
from bot.intake.limits import Alteration, bound_alert, bound_text, record
from bot.intake.wire import EpochTime, TemplateText, payload_error

DEFAULT_ALERTNAME = "OpsgenieAlert"
FIRING_ACTIONS = frozenset({"Create"})
RESOLVED_ACTIONS = frozenset({"Close"})


class OpsgenieAlert(BaseModel):
    """``alert``: the fields Ballast reads (Opsgenie sends more)."""

    model_config = ConfigDict(extra="ignore")

    alert_id: Annotated[str, StringConstraints(min_length=1, max_length=100)] = Field(
        alias="alertId"
    )
    message: str | None = None
    alias: str | None = None
    tiny_id: TemplateText | None = Field(default=None, alias="tinyId")
    entity: str | None = None
    source: str | None = None
    username: str | None = None
    description: str | None = None
    priority: TemplateText | None = None
    tags: list[str] | None = None
    details: dict[str, str] | None = None
    created_at: EpochTime | None = Field(default=None, alias="createdAt")
    updated_at: EpochTime | None = Field(default=None, alias="updatedAt")


class OpsgenieWebhook(BaseModel):
    """The envelope; ``alert`` is read only for the actions Ballast acts on."""

    model_config = ConfigDict(extra="ignore")

    action: Annotated[str, StringConstraints(min_length=1)]
    alert: object = None
    integration_name: str | None = Field(default=None, alias="integrationName")


def parse_opsgenie(data: object, *, now: datetime | None = None) -> AlertBatch:
    """Validate one decoded Opsgenie webhook body; raise PayloadError naming the bad field.

    ``now`` is not used: the alert's own times are, so a redelivery is a duplicate.
    """
    del now
    try:
        hook = OpsgenieWebhook.model_validate(data)
    except ValidationError as err:
        raise payload_error(err) from None
    source = AlertSource.OPSGENIE
    if hook.action in FIRING_ACTIONS:
        status, when_field = AlertStatus.FIRING, "createdAt"
    elif hook.action in RESOLVED_ACTIONS:
        status, when_field = AlertStatus.RESOLVED, "updatedAt"
    else:
        return AlertBatch(source=source, alerts=[], ignored=_ignored_reason(hook.action))
    try:
        alert = OpsgenieAlert.model_validate(hook.alert)
    except ValidationError as err:
        raise payload_error(err, prefix="alert") from None
    when = alert.created_at if status is AlertStatus.FIRING else alert.updated_at
    if when is None:
        raise PayloadError(
            f"required field is missing: a {hook.action} says when it happened",
            f"alert.{when_field}",
        )
    labels = {"alertname": alert.message or alert.alias or DEFAULT_ALERTNAME}
    if alert.entity:
        labels["service"] = alert.entity
    altered: list[Alteration] = []
    labels, annotations = bound_alert(labels, _annotations(alert, hook), altered)
    fingerprint = bound_text(f"opsgenie:{alert.alert_id}", 128, "alert.alertId", altered) or ""
    canonical = Alert(
        fingerprint=fingerprint,
        status=status,
        labels=labels,
        annotations=record(annotations, altered),
        starts_at=when,
        ends_at=when if status is AlertStatus.RESOLVED else None,
        source=source,
    )
    return AlertBatch(source=source, alerts=[canonical], alterations=tuple(altered))


def _annotations(alert: OpsgenieAlert, hook: OpsgenieWebhook) -> dict[str, str]:
    priority = alert.priority
    if priority is not None and priority.isdigit():
        priority = f"P{priority}"  # some senders write the number alone
    names = {
        "summary": alert.message,
        "description": alert.description,
        "opsgenie_alert_id": alert.alert_id,
        "opsgenie_alias": alert.alias,
        "opsgenie_tiny_id": alert.tiny_id,
        "opsgenie_priority": priority,
        "opsgenie_tags": ", ".join(alert.tags) if alert.tags else None,
        "opsgenie_entity": alert.entity,
        "opsgenie_source": alert.source,
        "opsgenie_user": alert.username,
        "opsgenie_integration": hook.integration_name,
        "opsgenie_action": hook.action,
        "opsgenie_details": (
            json.dumps(alert.details, ensure_ascii=False, sort_keys=True) if alert.details else None
        ),
    }
    return {name: value for name, value in names.items() if value}


def _ignored_reason(action: str) -> str:
    if action in ("Acknowledge", "UnAcknowledge"):
        return (
            f"{action}: an acknowledgement in Opsgenie does not change whether the alert "
            "fires; acknowledge the Ballast incident in Slack or the API"
        )
    if action == "AddNote":
        return (
            "AddNote: notes made in Opsgenie stay there; add notes to the Ballast incident in "
            "Slack or the API"
        )
    return f"{action}: does not change whether the alert fires"
