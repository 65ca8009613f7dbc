"""Which keys are control keys, and which values each may hold (shared by every backend).

Checked at the edge (API, CLI, store) so that a typo such as ``support.autonmy`` or a tool switch
set to the string ``"false"`` is refused, naming the key and the allowed values, instead of
quietly becoming a flag no AI application reads. The convention itself is documented in
:mod:`actions.controls` and ``docs/controls.md``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import StrEnum

from actions.backends.base import FlagValue
from actions.base import NAME_PATTERN
from actions.controls import KEY_PATTERN, AutonomyLevel, HumanReviewLevel
from actions.errors import FinalError

MAX_STRING_VALUE = 200
MAX_ACTOR = 200
MAX_REASON = 2000

_NAME = NAME_PATTERN.removeprefix("^").removesuffix("$")
_TOOL_KEY = re.compile(rf"^(?P<service>{_NAME})\.tools\.(?P<tool>{_NAME})\.enabled\Z")
_SERVICE_KEY = re.compile(
    rf"^(?P<service>{_NAME})\."
    r"(?P<control>autonomy|model|prompt_version|retrieval_index|human_review)\Z"
)

_AUTONOMY_LEVELS = frozenset(level.value for level in AutonomyLevel)
_REVIEW_LEVELS = frozenset(level.value for level in HumanReviewLevel)

KEY_SHAPES = (
    "<service>.tools.<tool>.enabled, <service>.autonomy, <service>.model, "
    "<service>.prompt_version, <service>.retrieval_index or <service>.human_review"
)


class ControlValueError(FinalError, ValueError):
    """A key outside the convention, or a value its key cannot hold. Nothing was changed.

    A ``FinalError`` for the executor (retrying cannot help) and a ``ValueError`` for callers
    that only validate input (the API answers 422, the CLI fails).
    """


class Control(StrEnum):
    """What a key controls; decides the type and the allowed values."""

    TOOL_ENABLED = "tool_enabled"
    AUTONOMY = "autonomy"
    MODEL = "model"
    PROMPT_VERSION = "prompt_version"
    RETRIEVAL_INDEX = "retrieval_index"
    HUMAN_REVIEW = "human_review"


@dataclass(frozen=True, slots=True)
class ControlKey:
    key: str
    service: str
    control: Control
    tool: str | None = None

    @property
    def value_type(self) -> str:
        """``bool`` for tool switches, ``string`` for everything else (the column's value)."""
        return "bool" if self.control is Control.TOOL_ENABLED else "string"

    @property
    def allowed(self) -> str:
        """The allowed values, as an error message or ``--help`` says them."""
        if self.control is Control.TOOL_ENABLED:
            return "true or false (a JSON boolean)"
        if self.control is Control.AUTONOMY:
            return "one of " + ", ".join(level.value for level in AutonomyLevel)
        if self.control is Control.HUMAN_REVIEW:
            return "one of " + ", ".join(level.value for level in HumanReviewLevel)
        return (
            f"a string of 1 to {MAX_STRING_VALUE} printable characters "
            "without leading or trailing spaces"
        )


def parse_key(key: str) -> ControlKey:
    """Split a key into service, control and tool; raise ``ControlValueError`` if it is none."""
    if not KEY_PATTERN.match(key):
        raise ControlValueError(
            f"{_quote(key)} is not a valid control key: keys are 1 to 200 characters of "
            "a-z 0-9 . _ - (OpenFeature OFREP clients put them in URLs unencoded)"
        )
    if match := _TOOL_KEY.match(key):
        return ControlKey(key, match["service"], Control.TOOL_ENABLED, match["tool"])
    if match := _SERVICE_KEY.match(key):
        return ControlKey(key, match["service"], Control(match["control"]))
    raise ControlValueError(
        f"{_quote(key)} is not a control key: use {KEY_SHAPES}, where service and tool names "
        "are 1 to 63 characters of a-z 0-9 _ - starting with a letter or digit"
    )


def check_value(key: str, value: object) -> FlagValue:
    """The value, unchanged, if ``key`` may hold it; otherwise ``ControlValueError``."""
    parsed = parse_key(key)
    if parsed.control is Control.TOOL_ENABLED:
        if isinstance(value, bool):
            return value
    elif isinstance(value, str):
        text = str(value)
        if parsed.control is Control.AUTONOMY:
            if text in _AUTONOMY_LEVELS:
                return text
        elif parsed.control is Control.HUMAN_REVIEW:
            if text in _REVIEW_LEVELS:
                return text
        elif 0 < len(text) <= MAX_STRING_VALUE and text.isprintable() and text == text.strip():
            return text
    raise ControlValueError(f"{key} must be {parsed.allowed}; got {_show(value)}")


def check_audit(actor: str, reason: str) -> None:
    """Every change names who made it (a Slack user id, handle or name), for the audit.

    Control characters are refused: PostgreSQL cannot store a NUL, and neither field should
    be able to forge lines in a log or a Slack message.
    """
    if not (0 < len(actor.strip()) <= MAX_ACTOR and actor.isprintable()):
        raise ControlValueError(
            f"actor must be 1 to {MAX_ACTOR} printable characters (a Slack user id, handle or "
            f"name); got {_show(actor)}"
        )
    if len(reason) > MAX_REASON:
        raise ControlValueError(f"reason is {len(reason)} characters; at most {MAX_REASON}")
    if not all(char.isprintable() or char in "\n\t" for char in reason):
        raise ControlValueError("reason may hold printable characters, newlines and tabs only")


def value_type_of(value: FlagValue) -> str:
    return "bool" if isinstance(value, bool) else "string"


def variant_of(value: FlagValue) -> str:
    """The OFREP variant name: the value itself, so every distinct value is its own variant."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def same_value(a: FlagValue | None, b: FlagValue | None) -> bool:
    """Equal and of the same type (``True`` is not ``"true"``)."""
    return type(a) is type(b) and a == b


def _show(value: object) -> str:
    try:
        text = json.dumps(value, ensure_ascii=True)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _quote(key: str) -> str:
    return _show(key)
