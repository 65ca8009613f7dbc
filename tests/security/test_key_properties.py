"""Every control-key check is a full match, over generated keys (issue 14, item 5).

The convention is ``[a-z0-9._-]{1,200}``; any text outside it — a trailing newline above all,
which ``$`` let through — is refused by every checker that gates a key.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actions.backends.value_type import check_value
from actions.control_values import ControlValueError, parse_key
from actions.controls import KEY_PATTERN
from actions.errors import FinalError

_SPEC = re.compile(r"[a-z0-9._-]{1,200}")
_KEY_CHARS = "abcz09._-"
keys = st.text(alphabet=_KEY_CHARS, min_size=1, max_size=210)
tails = st.sampled_from(["\n", "\r\n", "\r", "\x00", " ", "\t", "\u2028", "\x0b", "\x0c"])
anything = st.text(
    alphabet=st.sampled_from([*_KEY_CHARS, "\n", "\x00", " ", "A", "é"]), max_size=30
)


@given(keys | anything)
def test_key_pattern_is_the_spec_as_a_full_match(key: str) -> None:
    assert bool(KEY_PATTERN.match(key)) == bool(_SPEC.fullmatch(key))


@given(
    st.sampled_from(["audit-svc", "support", "a"]),
    st.sampled_from(["autonomy", "model", "tools.web_search.enabled", "human_review"]),
    tails,
)
def test_a_valid_key_with_any_trailing_character_is_refused(
    service: str, control: str, tail: str
) -> None:
    key = f"{service}.{control}"
    assert parse_key(key).service == service
    with pytest.raises(ControlValueError):
        parse_key(key + tail)
    with pytest.raises(FinalError):
        check_value(key + tail, "off")


@given(keys, tails, keys)
def test_a_control_character_anywhere_is_refused(head: str, tail: str, rest: str) -> None:
    with pytest.raises(ControlValueError):
        parse_key(head + tail + rest)
