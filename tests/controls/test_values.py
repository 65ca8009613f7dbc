"""The key convention and the values each key may hold: exact messages, nothing coerced."""

from __future__ import annotations

import pytest

from actions.errors import FinalError
from bot.controls import Control, ControlValueError, check_value, parse_key, variant_of

SHAPES = (
    "use <service>.tools.<tool>.enabled, <service>.autonomy, <service>.model, "
    "<service>.prompt_version, <service>.retrieval_index or <service>.human_review, where "
    "service and tool names are 1 to 63 characters of a-z 0-9 _ - starting with a letter "
    "or digit"
)


@pytest.mark.parametrize(
    ("key", "service", "control", "tool"),
    [
        ("support.tools.web_search.enabled", "support", Control.TOOL_ENABLED, "web_search"),
        ("support-bot.tools.sql-2.enabled", "support-bot", Control.TOOL_ENABLED, "sql-2"),
        ("support.autonomy", "support", Control.AUTONOMY, None),
        ("support.model", "support", Control.MODEL, None),
        ("support.prompt_version", "support", Control.PROMPT_VERSION, None),
        ("support.retrieval_index", "support", Control.RETRIEVAL_INDEX, None),
        ("support.human_review", "support", Control.HUMAN_REVIEW, None),
        # A tool may be called like a control: the shape decides, not the word.
        ("a.tools.model.enabled", "a", Control.TOOL_ENABLED, "model"),
    ],
)
def test_convention_keys_parse(key: str, service: str, control: Control, tool: str | None) -> None:
    parsed = parse_key(key)
    assert (parsed.service, parsed.control, parsed.tool) == (service, control, tool)
    assert parsed.value_type == ("bool" if tool else "string")


@pytest.mark.parametrize(
    "key",
    [
        "support.autonmy",  # a typo must not become a flag nobody reads
        "support",
        "support.tools.web_search",
        "support.tools.web.search.enabled",  # a dot inside a tool name is ambiguous
        "support..model",
        "-support.model",
        "support.model.extra",
        "tools.x.enabled",
    ],
)
def test_keys_outside_the_convention_are_refused(key: str) -> None:
    with pytest.raises(ControlValueError) as err:
        parse_key(key)
    assert str(err.value) == f'"{key}" is not a control key: {SHAPES}'


@pytest.mark.parametrize("key", ["Support.model", "support/model", "support.model ", "", "a" * 201])
def test_keys_outside_the_alphabet_are_refused(key: str) -> None:
    with pytest.raises(ControlValueError, match="is not a valid control key: keys are 1 to 200 "):
        parse_key(key)


def test_errors_are_final_and_value_errors() -> None:
    """The executor must not retry them; plain validation callers catch ValueError."""
    with pytest.raises(FinalError):
        check_value("support.autonomy", "manual")
    with pytest.raises(ValueError, match=r"^support\.autonomy must be one of"):
        check_value("support.autonomy", "manual")


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        (
            "support.tools.web_search.enabled",
            "false",
            'support.tools.web_search.enabled must be true or false (a JSON boolean); got "false"',
        ),
        (
            "support.tools.web_search.enabled",
            0,
            "support.tools.web_search.enabled must be true or false (a JSON boolean); got 0",
        ),
        (
            "support.autonomy",
            "manual",
            'support.autonomy must be one of full, supervised, suggest_only, off; got "manual"',
        ),
        (
            "support.autonomy",
            "OFF",
            'support.autonomy must be one of full, supervised, suggest_only, off; got "OFF"',
        ),
        (
            "support.human_review",
            True,
            "support.human_review must be one of off, high_risk, all; got true",
        ),
        (
            "support.model",
            "",
            "support.model must be a string of 1 to 200 printable characters without leading "
            'or trailing spaces; got ""',
        ),
        (
            "support.model",
            None,
            "support.model must be a string of 1 to 200 printable characters without leading "
            "or trailing spaces; got null",
        ),
    ],
)
def test_bad_values_name_the_key_and_the_allowed_values(
    key: str, value: object, message: str
) -> None:
    with pytest.raises(ControlValueError) as err:
        check_value(key, value)
    assert str(err.value) == message


@pytest.mark.parametrize(
    "value", [" gpt-4o", "gpt-4o ", "gpt\n4o", "gpt\x00", "a" * 201, ["gpt-4o"], {"v": 1}, 1.5]
)
def test_string_controls_refuse_what_an_app_would_misread(value: object) -> None:
    with pytest.raises(ControlValueError, match=r"^support\.prompt_version must be a string of"):
        check_value("support.prompt_version", value)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("support.tools.web_search.enabled", False),
        ("support.tools.web_search.enabled", True),
        ("support.autonomy", "suggest_only"),
        ("support.human_review", "high_risk"),
        ("support.model", "gpt-4o-2024-08-06"),
        ("support.retrieval_index", "kb/2026-11-27 v2 (ü)"),
        ("support.prompt_version", "a" * 200),
    ],
)
def test_good_values_come_back_unchanged(key: str, value: bool | str) -> None:
    checked = check_value(key, value)
    assert checked == value
    assert type(checked) is type(value)


def test_variants_are_the_values() -> None:
    assert variant_of(True) == "true"
    assert variant_of(False) == "false"
    assert variant_of("gpt-4o") == "gpt-4o"
