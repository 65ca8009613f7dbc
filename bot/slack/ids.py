"""Slack action ids and button values: what a click on an incident message carries back.

A button's ``action_id`` says what to do (``ballast.run:rollback-prompt``); its ``value`` says
to what, as the message showed it: the incident, the mitigation, and a version of the state the
button was drawn from. Slack signs the request but a message can be stale (someone else already
approved, a newer execution replaced it), so the listener compares ``version`` with the current
one before acting, and :meth:`ButtonValue.decode` refuses anything Ballast did not make.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.errors import BallastError
from bot.runbooks.schema import SLUG_PATTERN

MAX_ACTION_ID = 255
MAX_BUTTON_VALUE = 2000
_PREFIX = "ballast."
_SEPARATOR = ":"


class ActionId(StrEnum):
    """Every interactive element Ballast puts in a message; listeners branch on these."""

    RUN = "ballast.run"
    APPROVE = "ballast.approve"
    SKIP = "ballast.skip"
    UNDO = "ballast.undo"
    MARK_DONE = "ballast.mark_done"
    ACK = "ballast.ack"
    RESOLVE = "ballast.resolve"
    GATE_APPROVE = "ballast.gate_approve"  # on a release gate's request, not an incident

    @property
    def per_mitigation(self) -> bool:
        """Whether the action names a mitigation (and so its action id carries one)."""
        return self not in (ActionId.ACK, ActionId.RESOLVE, ActionId.GATE_APPROVE)

    @property
    def pattern(self) -> re.Pattern[str]:
        """What Bolt's ``app.action(...)`` should match: this kind, with or without a suffix."""
        return re.compile(rf"^{re.escape(self.value)}(?:{_SEPARATOR}[a-z0-9][a-z0-9_-]*)?\Z")


class ButtonValueError(BallastError, ValueError):
    """A button value or action id that Ballast did not make: tampered, truncated or foreign."""


def action_id(kind: ActionId, mitigation_id: str | None = None) -> str:
    """A message-unique action id: Slack wants them unique per block, Bolt matches by pattern."""
    return kind.value if mitigation_id is None else f"{kind.value}{_SEPARATOR}{mitigation_id}"


def parse_action_id(raw: str) -> tuple[ActionId, str | None]:
    """The kind and mitigation of an action id made by :func:`action_id`."""
    if len(raw) > MAX_ACTION_ID or not raw.startswith(_PREFIX):
        raise ButtonValueError(f"action id {raw[:80]!r} is not one of Ballast's")
    kind_text, _, mitigation = raw.partition(_SEPARATOR)
    try:
        kind = ActionId(kind_text)
    except ValueError:
        known = ", ".join(kind.value for kind in ActionId)
        raise ButtonValueError(f"unknown action id {raw[:80]!r}; Ballast's are {known}") from None
    if not kind.pattern.match(raw):
        raise ButtonValueError(f"action id {raw[:80]!r} has a malformed mitigation id")
    return kind, mitigation or None


class ButtonValue(BaseModel):
    """What a button carries: enough to act, and to notice the message was out of date.

    ``state`` and ``version`` are those of the mitigation (or, for incident buttons, the
    incident) when the message was rendered; see :func:`bot.slack.view.mitigation_version`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    v: int = Field(default=1, ge=1, le=1)  # the format; a change of shape gets a new number
    action: ActionId
    incident_id: int = Field(ge=1, lt=2**63)
    mitigation_id: str | None = Field(default=None, pattern=SLUG_PATTERN, max_length=64)
    state: str = Field(pattern=r"^[a-z][a-z_]{0,31}$")
    version: str = Field(pattern=r"^[0-9a-f]{16}$")

    def encode(self) -> str:
        """Compact JSON, checked against Slack's 2,000-character limit."""
        text = self.model_dump_json(exclude_none=True)
        if len(text) > MAX_BUTTON_VALUE:  # cannot happen with these fields; kept as a guard
            raise ButtonValueError(
                f"button value is {len(text)} characters; Slack allows {MAX_BUTTON_VALUE}"
            )
        return text

    @classmethod
    def decode(cls, raw: str, *, expected: ActionId | None = None) -> ButtonValue:
        """Parse a clicked button's value; anything else raises :class:`ButtonValueError`.

        ``expected`` is the kind from the action id: a value moved onto another button is
        refused rather than, say, turning a Skip into a Run.
        """
        value = _decode(cls, raw)
        if value.action.per_mitigation != (value.mitigation_id is not None):
            raise ButtonValueError(
                f"button value {raw[:100]!r}: {value.action.value} "
                + ("needs" if value.action.per_mitigation else "takes no")
                + " mitigation_id"
            )
        if expected is not None and value.action is not expected:
            raise ButtonValueError(
                f"button value is for {value.action.value} but was sent by a "
                f"{expected.value} button"
            )
        return value


class GateButtonValue(BaseModel):
    """What a release gate request's Approve button carries: the release to approve, and a
    version of its approvals when the message was drawn (another one now: stale)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    v: int = Field(default=1, ge=1, le=1)
    action: ActionId = Field(default=ActionId.GATE_APPROVE)
    service: str = Field(pattern=SLUG_PATTERN, max_length=63)
    kind: str = Field(pattern=r"^[a-z][a-z_]{0,31}$")
    release: str = Field(min_length=1, max_length=300)
    version: str = Field(pattern=r"^[0-9a-f]{16}$")

    def encode(self) -> str:
        return self.model_dump_json()

    @classmethod
    def decode(cls, raw: str) -> GateButtonValue:
        value = _decode(cls, raw)
        if value.action is not ActionId.GATE_APPROVE:
            raise ButtonValueError(f"button value is for {value.action.value}, not a gate approval")
        return value


M = TypeVar("M", bound=BaseModel)


def _decode(model: type[M], raw: str) -> M:
    """Parse a button value made by Ballast; anything else raises ``ButtonValueError``."""
    if len(raw) > MAX_BUTTON_VALUE:
        raise ButtonValueError(
            f"button value is {len(raw)} characters, over Slack's {MAX_BUTTON_VALUE}; "
            "it was not made by Ballast"
        )
    try:
        value = model.model_validate_json(raw, strict=True)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'value'}: {e['msg']}"
            for e in err.errors(include_url=False)
        )
        raise ButtonValueError(
            f"button value {raw[:100]!r} is not one Ballast made ({problems}); "
            "the message may predate an upgrade: use /ballast show ID for a fresh one"
        ) from None
    return value
