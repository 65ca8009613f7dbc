"""The built-in control store and the control-key convention it enforces.

``BuiltinControlStore`` is the default backend (served over OFREP by ``bot.api.ofrep``);
``ControlHistoryLog`` is the history of every key through any backend, behind ``to: previous``.
"""

from actions.control_values import (
    Control,
    ControlKey,
    ControlValueError,
    check_value,
    parse_key,
    variant_of,
)
from bot.controls.history import ControlChange, ControlHistoryLog
from bot.controls.store import BuiltinControlStore, ControlSnapshot, ControlValue

__all__ = [
    "BuiltinControlStore",
    "Control",
    "ControlChange",
    "ControlHistoryLog",
    "ControlKey",
    "ControlSnapshot",
    "ControlValue",
    "ControlValueError",
    "check_value",
    "parse_key",
    "variant_of",
]
