"""pydantic errors in the words of a runbook author.

:func:`translate` turns each pydantic error into where to point (a data path, and whether at
the key or the value) and one line that says what is wrong, quotes the bad value and names the
fix: ``unknown field 'dashbords'; did you mean 'dashboards'?``. The caller adds the file, line
and column (:meth:`~bot.runbooks.yaml_positions.PositionedDocument.diagnostic`).
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel
from pydantic_core import ErrorDetails

from actions.base import NAME_PATTERN
from bot.runbooks.model_fields import enum_members, field_name, fields_of, model_at
from bot.runbooks.schema import (
    LABEL_NAME_PATTERN,
    OWNER_PATTERN,
    RUNBOOK_ID_PATTERN,
    SLUG_PATTERN,
)
from bot.runbooks.yaml_positions import DataPath

Problem = tuple[DataPath, str, bool]
"""Where to point, the message, and whether to point at the key rather than the value."""

_PATTERN_HINTS = {
    RUNBOOK_ID_PATTERN: (
        "runbook id",
        "use lowercase letters, digits, '.', '_' and '-', with '/' between parts, "
        "e.g. support-assistant/tool-failure-spike",
    ),
    SLUG_PATTERN: ("name", "use lowercase letters, digits, '_' and '-', e.g. disable-tool"),
    OWNER_PATTERN: (
        "owner",
        "use a Slack user group handle like @ai-platform-oncall or a user ID like U024BE7LH",
    ),
    LABEL_NAME_PATTERN: ("label name", "use letters, digits and '_', e.g. service"),
    NAME_PATTERN: (
        "name",
        "use lowercase letters, digits, '_' and '-' (up to 63), e.g. web_search",
    ),
}


def where(loc: DataPath) -> str:
    """``("mitigations", 0, "params")`` → ``mitigations[0].params``."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part.isidentifier():
            text += f".{part}" if text else part
        else:
            text += f"[{part!r}]"
    return text


def show(value: Any) -> str:
    """A value as a runbook author would write it, short."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value if len(value) <= 80 else value[:77] + "...")
    return str(value)


def translate(
    details: Sequence[ErrorDetails], model: type[BaseModel], base: DataPath, noun: str, owner: str
) -> list[Problem]:
    """pydantic errors as (where to point, message, point at the key), for ``model`` at ``base``.

    A missing field that an unknown field's "did you mean" already names is not repeated.
    """
    suggested = set()
    for detail in details:
        if detail["type"] == "extra_forbidden":
            rel = tuple(detail["loc"])
            suggested.add((*rel[:-1], _closest_field(model, rel)))
    return [
        _describe(detail, model, base, noun, owner)
        for detail in details
        if not (detail["type"] == "missing" and tuple(detail["loc"]) in suggested)
    ]


def _closest_field(model: type[BaseModel], rel: DataPath) -> str | None:
    close = difflib.get_close_matches(str(rel[-1]), fields_of(model_at(model, rel[:-1])), n=1)
    return close[0] if close else None


def _describe(
    detail: ErrorDetails, model: type[BaseModel], base: DataPath, noun: str, owner: str
) -> Problem:
    rel = tuple(detail["loc"])
    loc = (*base, *rel)
    inside = f" in {where(loc[:-1])}" if loc[:-1] else ""
    if detail["type"] == "extra_forbidden":
        name = str(rel[-1])
        close = _closest_field(model, rel)
        names = fields_of(model_at(model, rel[:-1]))
        if close:
            fix = f"did you mean {close!r}?"
        else:
            fix = f"remove it, or use one of: {', '.join(names)}" if names else "remove it"
        return loc, f"unknown {noun} {name!r}{owner}{inside}; {fix}", True
    if detail["type"] == "missing":
        name = str(rel[-1])
        hint = _field_hint(model_at(model, rel[:-1]), name)
        return loc[:-1], f"missing required {noun} {name!r}{owner}{inside}{hint}; add it", False
    return loc, f"{where(loc)}: {_problem(detail)}", False


def _problem(detail: ErrorDetails) -> str:
    kind = detail["type"]
    value = detail.get("input")
    ctx = detail.get("ctx") or {}
    if kind == "string_pattern_mismatch" and ctx.get("pattern") in _PATTERN_HINTS:
        what, fix = _PATTERN_HINTS[ctx["pattern"]]
        return f"{show(value)} is not a valid {what}: {fix}"
    if value is None and kind.endswith("_type"):
        return f"has no value; {_lower(detail['msg'])}"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"expected a mapping of keys to values, got {show(value)}"
    if kind == "list_type":
        fix = f"; write it as a list: [{show(value)}]" if not isinstance(value, dict) else ""
        return f"expected a list, got {show(value)}{fix}"
    if kind == "string_type" and isinstance(value, int | float):
        return f'expected text, got {show(value)}; quote it: "{show(value)}"'
    message = str(ctx["error"]) if kind == "value_error" and "error" in ctx else detail["msg"]
    message = _lower(message)
    shown = show(value)
    if not isinstance(value, dict | list) and shown not in message:
        message += f", got {shown}"
    return message


def _field_hint(model: type[BaseModel] | None, key: str) -> str:
    name = field_name(model, key) if model is not None else None
    if model is None or name is None:
        return ""
    info = model.model_fields[name]
    members = enum_members(info.annotation)
    if members:
        return f" (one of: {', '.join(str(m.value) for m in members)})"
    if info.description:
        return f" ({_lower(info.description.rstrip('.'))})"
    return ""


def _lower(text: str) -> str:
    return text[:1].lower() + text[1:]
