"""Which type a control key holds, for backends that store typed flags.

flagd variants and Unleash toggles versus variants need to know before writing whether a key is
a tool switch (bool) or a string control. The convention and its checks live in
:mod:`actions.control_values`; keys outside the convention are typed by the value written.
"""

from __future__ import annotations

from actions.backends.base import FlagValue
from actions.control_values import ControlValueError, parse_key
from actions.control_values import check_value as check_control_value
from actions.controls import KEY_PATTERN
from actions.errors import FinalError


def expected_type(key: str) -> type[bool] | type[str] | None:
    """``bool`` for tool switches, ``str`` for the other controls, None for other keys."""
    try:
        return bool if parse_key(key).value_type == "bool" else str
    except ControlValueError:
        return None


def is_bool_key(key: str, value: FlagValue | None = None) -> bool:
    """Whether the key holds a bool: by convention, or else by the value being written."""
    kind = expected_type(key)
    if kind is None:
        return isinstance(value, bool)
    return kind is bool


def check_value(key: str, value: FlagValue) -> None:
    """Refuse a malformed key, or a value of the wrong type or outside the key's enum."""
    if expected_type(key) is not None:
        check_control_value(key, value)
        return
    if not KEY_PATTERN.match(key):
        raise FinalError(f"control key {key!r} must match [a-z0-9._-]{{1,200}}")
    if isinstance(value, str) and not value:
        raise FinalError(f"{key} cannot be set to an empty string")
