"""Pieces every source parser shares: the JSON body, timestamps, and error paths.

Each source module declares pydantic models of what its sender puts on the wire, validates a
payload with them once, and turns a :class:`pydantic.ValidationError` into a
:class:`~bot.errors.PayloadError` whose ``field`` is the path a sender can find in its own JSON
(``alerts[2].startsAt``, ``alerts[0].labels["team name"]``) and whose message says what was
expected and what arrived. Senders only ever see that one error type.
"""

from __future__ import annotations

import codecs
import json
import math
import re
from collections.abc import Callable, Sequence, Sized
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import orjson
from pydantic import PlainValidator, StringConstraints, ValidationError
from pydantic_core import ErrorDetails

from bot.errors import PayloadError
from bot.intake.alert import ZERO_TIME_YEAR, as_utc, normalise_end

TIMESTAMP_EXAMPLE = "2024-05-01T12:00:00Z"
# Go's zero time as Alertmanager and Grafana write it: "not ended".
GO_ZERO_TIME = "0001-01-01T00:00:00Z"

# RFC 3339 date-time: what Go's time.RFC3339Nano writes (Alertmanager, Grafana) and what
# datetime.isoformat() writes. An offset is required: a time without one is ambiguous.
_RFC3339 = re.compile(
    r"\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d(?:\.\d+)?(?:[Zz]|[+-]\d\d:\d\d)", re.ASCII
)
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)
_SHOWN_CHARS = 80


def parse_json_bytes(body: bytes) -> object:
    """Decode a request body, naming line and column when it is not JSON.

    Stricter than :func:`json.loads` where laxness would hurt later: ``NaN``/``Infinity`` are
    refused. NUL (``"\\u0000"``) and lone UTF-16 surrogates (``"\\ud800"``) decode as the text
    they escape: the parsers replace them where they would be stored (:mod:`bot.intake.limits`),
    because refusing the body would lose the whole group. A UTF-8 byte-order mark is skipped
    (RFC 8259 allows it).

    orjson decodes (in half the time of the stdlib, which was the largest single cost of a
    stored alert); whatever it refuses is decoded again by the stdlib, which says exactly what
    is wrong and where, or reads what orjson does not (deep nesting, lone surrogates). One
    difference remains: an integer beyond 64 bits reads as a float, as in most JSON parsers.
    """
    if body.startswith(codecs.BOM_UTF8):
        body = body[len(codecs.BOM_UTF8) :]
    try:
        data: object = orjson.loads(body)
    except orjson.JSONDecodeError:
        data = _decode_with_stdlib(body)
    return data


def _decode_with_stdlib(body: bytes) -> object:
    try:
        return json.loads(body, parse_constant=_refuse_constant, parse_float=_finite_float)
    except json.JSONDecodeError as err:
        raise PayloadError(
            f"malformed JSON at line {err.lineno}, column {err.colno}: {err.msg}"
        ) from None
    except UnicodeDecodeError as err:
        raise PayloadError(
            f"the body is not UTF-8 text: byte {err.start} ({err.object[err.start]:#04x}) "
            "cannot be decoded; send JSON encoded as UTF-8"
        ) from None
    except ValueError:  # an integer longer than Python's int_max_str_digits (4300)
        raise PayloadError("malformed JSON: an integer has thousands of digits") from None
    except RecursionError:
        raise PayloadError("the JSON is nested too deeply to be an alert payload") from None


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise PayloadError(f"malformed JSON: the number {text[:40]} is too large for a float")
    return value


def _refuse_constant(name: str) -> object:
    raise PayloadError(f"malformed JSON: {name} is not a JSON value (JSON has no NaN or Infinity)")


def parse_timestamp(value: object) -> datetime:
    """RFC 3339 text, fractional seconds of any length (Go writes nanoseconds), Z or offset."""
    if not isinstance(value, str) or _RFC3339.fullmatch(value) is None:
        raise ValueError(
            f'expected an RFC 3339 timestamp such as "{TIMESTAMP_EXAMPLE}", got {describe(value)}'
        )
    try:
        return datetime.fromisoformat(value.upper())
    except ValueError:
        raise ValueError(
            f"expected an RFC 3339 timestamp, got {describe(value)}, which is not a real "
            "date and time"
        ) from None


def _start_time(value: object) -> datetime | None:
    if value == GO_ZERO_TIME:  # Grafana's test notifications: "not given", the receive time
        return None
    try:
        parsed = parse_timestamp(value)
        return None if parsed.year <= ZERO_TIME_YEAR else as_utc(parsed)
    except OverflowError:
        raise ValueError(f"timestamp {describe(value)} is out of range in UTC") from None


def _end_time(value: object) -> datetime | None:
    if value is None or value == GO_ZERO_TIME:  # what every firing alert carries: skip parsing
        return None
    try:
        return normalise_end(parse_timestamp(value))
    except OverflowError:
        raise ValueError(f"timestamp {describe(value)} is out of range in UTC") from None


# Aware UTC datetimes. Plain validators, because pydantic's lax datetime also takes Unix numbers.
# The Go zero time means "not given": None, and the parser uses the time it was received.
StartTime = Annotated[datetime | None, PlainValidator(_start_time)]
# As StartTime, but the Go zero time ("0001-01-01T00:00:00Z", still firing) and null are None.
EndTime = Annotated[datetime | None, PlainValidator(_end_time)]
# The canonical Alert allows 1-128 characters; an empty one means "compute it from the labels".
Fingerprint = Annotated[str, StringConstraints(max_length=128)]

# Epoch numbers are told apart by size: Opsgenie sends createdAt in milliseconds and updatedAt
# in nanoseconds, Datadog's $DATE is milliseconds. Each unit's range starts in 1973, so any
# instant from then to the year 5138 reads the same whatever unit the sender chose.
_EPOCH_UNITS = ((10**11, 1), (10**14, 10**3), (10**17, 10**6), (10**20, 10**9))
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def parse_epoch(value: object) -> datetime:
    """A Unix time as an integer or a string of digits, in s, ms, µs or ns (by its size)."""
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 20:
        number = int(value)
    if number is None or number <= 0:
        raise ValueError(
            "expected a Unix time in milliseconds (an integer or a string of digits) such as "
            f"1448435530000, got {describe(value)}"
        )
    for below, per_second in _EPOCH_UNITS:
        if number < below:
            seconds, rest = divmod(number, per_second)
            return _EPOCH + timedelta(seconds=seconds, microseconds=rest * 10**6 // per_second)
    raise ValueError(f"expected a Unix time in milliseconds, got {describe(value)}, too large")


# A Unix time as above, aware UTC.
EpochTime = Annotated[datetime, PlainValidator(parse_epoch)]


def _text(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # a template variable written without quotes: "id": $ID
    raise ValueError(f"expected a string, got {describe(value)}")


# Text a sender fills in from a template: a string, or an integer written without quotes.
TemplateText = Annotated[str, PlainValidator(_text)]

# Vendor priorities (P1 highest) as the ``severity`` label Ballast's runbooks use.
PRIORITY_SEVERITY = {
    "P1": "critical",
    "P2": "critical",
    "P3": "warning",
    "P4": "info",
    "P5": "info",
}


def severity_of_priority(priority: str | None) -> str | None:
    """``P1``/``p2``/``3`` → the severity label; None for anything else."""
    if not priority:
        return None
    key = priority.strip().upper()
    if key.isdigit():
        key = f"P{key}"
    return PRIORITY_SEVERITY.get(key)


def describe(value: object) -> str:
    """A received value as a sender would recognise it in their JSON, kept short."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int) and value.bit_length() > 64:
        return "a very long number"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if isinstance(value, str):
        shown = value if len(value) <= _SHOWN_CHARS else value[:_SHOWN_CHARS] + "…"
        return json.dumps(shown, ensure_ascii=False)
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return f"a {type(value).__name__}"


def field_path(loc: Sequence[int | str], prefix: str = "") -> str:
    """``("alerts", 2, "startsAt")`` → ``alerts[2].startsAt``; odd keys are quoted."""
    path = prefix
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part == "[key]":  # pydantic's marker for "the key itself is bad"
            continue
        elif _IDENTIFIER.fullmatch(part):
            path += f".{part}" if path else part
        else:
            path += f"[{json.dumps(part, ensure_ascii=False)}]"
    return path


def payload_error(
    err: ValidationError,
    prefix: str = "",
    unknown_field: Callable[[Sequence[int | str]], str] | None = None,
) -> PayloadError:
    """The first problem pydantic found, as a PayloadError; the rest are counted, not listed.

    ``unknown_field`` words the message for a field a strict model does not know, given its
    location (the generic form uses it to suggest the right spelling).
    """
    errors = err.errors(include_url=False)
    first = errors[0]
    loc = first["loc"]
    if first["type"] == "extra_forbidden" and unknown_field is not None:
        message = unknown_field(loc)
    else:
        message = _message(first)
    if loc and loc[-1] == "[key]":
        message = f"invalid name: {message}"
    if len(errors) > 1:
        others = len(errors) - 1
        message += f" (and {others} more problem{'s' if others > 1 else ''})"
    return PayloadError(message, field_path(loc, prefix))


def _message(error: ErrorDetails) -> str:
    kind = error["type"]
    ctx: dict[str, Any] = dict(error.get("ctx") or {})
    value = error["input"]
    if kind == "missing":
        return "required field is missing"
    if kind == "value_error":
        return str(ctx["error"])
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "too_long":
        # Counted here: pydantic 2.14 no longer puts ``actual_length`` in the context.
        got = len(value) if isinstance(value, Sized) else describe(value)
        return f"expected at most {ctx['max_length']} items, got {got}"
    if kind == "string_too_long" and isinstance(value, str):
        return f"expected at most {ctx['max_length']} characters, got {len(value)}"
    expected = _EXPECTED.get(kind)
    if expected is not None:
        return f"expected {expected(ctx)}, got {describe(value)}"
    # Anything rarer: pydantic's own sentence, still with the value that was received.
    msg = error["msg"]
    return f"{msg[:1].lower()}{msg[1:]}, got {describe(value)}"


def _quote_choices(ctx: dict[str, Any]) -> str:
    # pydantic writes "'firing' or 'resolved'"; JSON senders expect double quotes.
    return str(ctx["expected"]).replace("'", '"')


_EXPECTED: dict[str, Callable[[dict[str, Any]], str]] = {
    "string_type": lambda _: "a string",
    "dict_type": lambda _: "an object",
    "model_type": lambda _: "an object",
    "model_attributes_type": lambda _: "an object",
    "list_type": lambda _: "an array",
    "int_type": lambda _: "an integer",
    "int_from_float": lambda _: "an integer",
    "int_parsing": lambda _: "an integer",
    "enum": _quote_choices,
    "literal_error": _quote_choices,
    "greater_than_equal": lambda ctx: f"a number >= {ctx['ge']}",
    "less_than_equal": lambda ctx: f"a number <= {ctx['le']}",
    "string_too_short": lambda ctx: (
        "a non-empty string"
        if ctx["min_length"] == 1
        else f"a string of at least {ctx['min_length']} characters"
    ),
    "string_pattern_mismatch": lambda ctx: f"a string matching {ctx['pattern']}",
}
