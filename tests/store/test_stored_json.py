"""Stored JSON read with orjson gives exactly what the stdlib gives, for anything the stdlib's
writer (what SQLAlchemy's JSON columns use) can have written."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.store import stored_json

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=30,
)


def same(a: Any, b: Any) -> bool:
    """Equal values of equal types all the way down (1 is not 1.0; NaN is NaN)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return bool(a == b)


@given(VALUES, st.booleans())
def test_reads_what_the_stdlib_reads(value: Any, ensure_ascii: bool) -> None:
    text = json.dumps(value, ensure_ascii=ensure_ascii)
    assert same(stored_json.loads(text), json.loads(text))
    assert same(stored_json.loads(text.encode()), json.loads(text))


@pytest.mark.parametrize(
    "text",
    [
        "-9223372036854775809",  # one below a signed 64-bit integer: orjson gives a float
        "18446744073709551616",
        "123456789012345678901234567890",
        '{"n": -9999999999999999999}',
        "[NaN, Infinity, -Infinity]",
        "1e400",
        '"\\ud800"',
        '{"a": 1, "a": 2}',
    ],
)
def test_the_cases_orjson_reads_otherwise_go_to_the_stdlib(text: str) -> None:
    assert same(stored_json.loads(text), json.loads(text))


def test_bad_json_fails_as_the_stdlibs_does() -> None:
    with pytest.raises(json.JSONDecodeError):
        stored_json.loads('{"a": ')
