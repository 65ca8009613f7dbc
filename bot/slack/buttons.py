"""The incident message's buttons: labels, styles, confirmations and stale-click values.

Each button's value carries the state and version it was drawn for
(:class:`bot.slack.ids.ButtonValue`), so a click on an outdated message is recognised.
"""

from __future__ import annotations

from slack_sdk.models.blocks import ButtonElement, ConfirmObject, PlainTextObject

from actions.base import Risk
from bot.execution.results import ExecutionState
from bot.slack.ids import ActionId, ButtonValue, action_id
from bot.slack.mrkdwn import MAX_BUTTON_TEXT, MAX_CONFIRM_TEXT, MAX_CONFIRM_TITLE, clip
from bot.slack.view import IncidentView, MitigationView

_LABELS = {
    ActionId.RUN: "Run",
    ActionId.APPROVE: "Approve",
    ActionId.SKIP: "Skip",
    ActionId.UNDO: "Undo",
    ActionId.MARK_DONE: "Mark done",
    ActionId.ACK: "Acknowledge",
    ActionId.RESOLVE: "Resolve",
}


def mitigation_button(view: IncidentView, m: MitigationView, kind: ActionId) -> ButtonElement:
    value = ButtonValue(
        action=kind,
        incident_id=view.incident_id,
        mitigation_id=m.id,
        state=m.state,
        version=m.version,
    )
    label = (
        "Run again" if kind is ActionId.RUN and m.state == ExecutionState.FAILED else _LABELS[kind]
    )
    style: str | None = None
    confirm: ConfirmObject | None = None
    if kind in (ActionId.RUN, ActionId.APPROVE):
        style = "primary" if m.risk is Risk.LOW else "danger"
        if m.risk in (Risk.HIGH, None):
            confirm = _confirm(
                f"{label}: {m.risk or 'unknown'}-risk action",
                m.preview or m.title,
                "Run it" if kind is ActionId.RUN else "Approve",
            )
    elif kind is ActionId.UNDO:
        before = f" It puts back the previous value: {m.before}." if m.before is not None else ""
        confirm = _confirm(
            f"Undo: {m.title}", f"The mitigation stops protecting users.{before}", "Undo"
        )
    return ButtonElement(
        text=PlainTextObject(text=clip(label, MAX_BUTTON_TEXT), emoji=True),
        action_id=action_id(kind, m.id),
        value=value.encode(),
        style=style,
        confirm=confirm,
    )


def incident_button(view: IncidentView, kind: ActionId) -> ButtonElement:
    value = ButtonValue(
        action=kind, incident_id=view.incident_id, state=view.status, version=view.version
    )
    confirm = None
    if kind is ActionId.RESOLVE:
        confirm = _confirm(
            f"Resolve incident #{view.incident_id}?",
            "Applied mitigations stay in place; undo them from this message when it is safe.",
            "Resolve",
        )
    return ButtonElement(
        text=PlainTextObject(text=_LABELS[kind], emoji=True),
        action_id=action_id(kind),
        value=value.encode(),
        style="primary" if kind is ActionId.ACK else None,
        confirm=confirm,
    )


def _confirm(title: str, text: str, yes: str) -> ConfirmObject:
    return ConfirmObject(
        title=PlainTextObject(text=clip(title, MAX_CONFIRM_TITLE)),
        text=PlainTextObject(text=clip(text, MAX_CONFIRM_TEXT)),
        confirm=PlainTextObject(text=clip(yes, 30)),
        deny=PlainTextObject(text="Cancel"),
        style="danger",
    )
