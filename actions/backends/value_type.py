"""Which type a control key holds, by the key convention in ``actions.controls``.

Backends that store typed flags (flagd variants, Unleash toggles versus variants) need to know
before writing whether a key is a tool switch (bool) or a string control, and must refuse a
value of the wrong type or outside an enum rather than write something the app cannot read.
"""

from __future__ import annotations

import re

from actions.backends.base import FlagValue
from actions.controls import KEY_PATTERN, AutonomyLevel, HumanReviewLevel
from actions.errors import FinalError

_TOOL_KEY = re.compile(r"^[a-z0-9_-]+\.tools\.[a-z0-9_-]+\.enabled$")
_STRING_KEY = re.compile(
    r"^[a-z0-9_-]+\.(autonomy|model|prompt_version|retrieval_index|human_review)$"
)
_ENUMS: dict[str, tuple[str, ...]] = {
    "autonomy": tuple(level.value for level in AutonomyLevel),
    "human_review": tuple(level.value for level in HumanReviewLevel),
}


def expected_type(key: str) -> type[bool] | type[str] | None:
    """``bool`` for tool switches, ``str`` for the other controls, None for other keys."""
    if _TOOL_KEY.match(key):
        return bool
    if _STRING_KEY.match(key):
        return str
    return None


def is_bool_key(key: str, value: FlagValue | None = None) -> bool:
    """Whether the key holds a bool: by convention, or else by the value being written."""
    kind = expected_type(key)
    if kind is None:
        return isinstance(value, bool)
    return kind is bool


def check_value(key: str, value: FlagValue) -> None:
    """Refuse a malformed key, or a value of the wrong type or outside the key's enum."""
    if not KEY_PATTERN.match(key):
        raise FinalError(f"control key {key!r} must match [a-z0-9._-]{{1,200}}")
    kind = expected_type(key)
    if kind is bool and not isinstance(value, bool):
        raise FinalError(f"{key} is a tool switch and takes true or false, not {value!r}")
    if kind is str and not isinstance(value, str):
        raise FinalError(f"{key} takes a string value, not {value!r}")
    if isinstance(value, str) and not value:
        raise FinalError(f"{key} cannot be set to an empty string")
    allowed = _ENUMS.get(key.rsplit(".", 1)[-1]) if kind is str else None
    if allowed is not None and value not in allowed:
        raise FinalError(f"{key} must be one of {', '.join(allowed)}, not {value!r}")
