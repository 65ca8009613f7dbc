"""A message quoting hostile text is still one log line, in both log formats.

Issue 14: an actor holding ``\\n`` and ANSI escapes forged a log line. The API now refuses such
actors; the formatters are the second line of defence for everything else a message quotes.
"""

from __future__ import annotations

import io
import json
import logging

import pytest

from bot.logs import JsonFormatter, TextFormatter, escape_controls

FORGED = "alice\n2026-12-04 03:00:00,000 INFO    bot.api: approved by admin\x1b[2K\r\u2028x"


def _emit(formatter: logging.Formatter, *args: object, exc: bool = False) -> str:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    logger = logging.getLogger("tests.security.log_injection")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    try:
        if exc:
            try:
                raise ValueError("boom")
            except ValueError:
                logger.exception("acknowledged by %s", *args)
        else:
            logger.info("acknowledged by %s", *args)
    finally:
        logger.handlers[:] = []
    return out.getvalue()


def test_text_format_writes_one_line_per_message() -> None:
    line = _emit(TextFormatter(), FORGED)
    assert line.count("\n") == 1, line
    assert "\x1b" not in line
    assert "\r" not in line
    assert "\u2028" not in line
    assert "alice\\n2026-12-04" in line
    assert "\\x1b[2K\\r\\u2028x" in line


def test_a_traceback_keeps_its_lines_but_the_message_does_not() -> None:
    text = _emit(TextFormatter(), FORGED, exc=True)
    first, *rest = text.splitlines()
    assert "alice\\n2026-12-04" in first
    assert rest[0] == "Traceback (most recent call last):"


def test_json_format_is_one_object_per_line() -> None:
    line = _emit(JsonFormatter(), FORGED)
    assert line.count("\n") == 1
    assert json.loads(line)["msg"] == f"acknowledged by {FORGED}"


@pytest.mark.parametrize("text", ["plain", "café ☃ ok", "tab\there"])
def test_printable_text_is_unchanged(text: str) -> None:
    expected = text.replace("\t", "\\t")
    assert escape_controls(text) == expected
