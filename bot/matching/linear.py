"""Runbook regexes run on RE2 (``google-re2``): linear time in the label's length, whatever the
pattern.

A label value comes from an alert, so from whoever can shape a metric's labels; with a
backtracking engine ``victim=~"(a*)*b"`` took seconds on 27 characters and stalled the event
loop. RE2 is also the syntax and semantics Alertmanager itself uses (Go's ``regexp``): the
pattern is compiled exactly as Alertmanager compiles it, ``^(?:value)$``, and tested the way it
tests it (a search, which the anchors make a whole-value match for every value that does not
close Alertmanager's group itself). :mod:`bot.matching.goregex` still parses the value first,
for Go's own accept/reject decisions, error codes and columns.
"""

from __future__ import annotations

import re
from typing import Any

import re2

from bot.errors import MatcherSyntaxError

_OPTIONS: Any = re2.Options()
_OPTIONS.log_errors = False  # RE2 would print every refused pattern to stderr
_OPTIONS.never_capture = True  # only match/no-match is wanted: the fastest RE2 path
_SURROGATE = re.compile("[\ud800-\udfff]")


class LinearRegex:
    """One compiled matcher regex; :meth:`matches` is Alertmanager's ``MatchString``."""

    __slots__ = ("_compiled", "value")

    def __init__(self, value: str) -> None:
        self.value = value
        try:
            self._compiled: Any = re2.compile(f"^(?:{value})$", _OPTIONS)
        except re2.error as err:
            reason = err.args[0].decode() if isinstance(err.args[0], bytes) else str(err)
            raise MatcherSyntaxError(
                f"RE2 cannot compile this regular expression ({reason}); simplify it", value
            ) from None

    def matches(self, text: str) -> bool:
        try:
            return self._compiled.search(text) is not None
        except UnicodeEncodeError:  # a lone surrogate (intake replaces them; tests may not)
            return self._compiled.search(_SURROGATE.sub("\ufffd", text)) is not None
