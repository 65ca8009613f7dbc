"""Alertmanager label matchers: ``name="value"``, ``name!="v"``, ``name=~"re"``, ``name!~"re"``.

Runbooks use the matcher syntax users already know from Alertmanager, so it must mean exactly
what it means there (version 0.25, ``pkg/labels/parse.go`` and ``matcher.go``):

- Grammar: optional white space (Go's ``\\s``: tab, LF, FF, CR, space — not VT or NBSP), a
  label name ``[a-zA-Z_:][a-zA-Z0-9_:]*``, one of ``=``, ``!=``, ``=~``, ``!~``, then the value,
  which may be quoted. In the value ``\\n``, ``\\"`` and ``\\\\`` are unescaped, any other
  backslash stays literal, and an unescaped ``"`` may only open and close it. ``job=`` is valid
  (empty value).
- A missing label has the value ``""``: ``foo=""`` matches alerts without ``foo``, ``foo!~"x"``
  matches them too, and ``foo=~".*"`` matches every alert.
- Regexes are Go's RE2 syntax, anchored as ``^(?:value)$``: :mod:`bot.matching.goregex` parses
  them with Go's grammar (accept/reject, error codes, the literals the index uses) and
  :mod:`bot.matching.linear` matches them with RE2, in time linear in the label's length.

Errors are :class:`~bot.errors.MatcherSyntaxError` with a 1-based column into the matcher text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from bot.errors import MatcherSyntaxError
from bot.matching.goregex import translate
from bot.matching.linear import LinearRegex

_GO_SPACE = "\t\n\f\r "
# parse.go's ^\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(=~|=|!=|!~)\s*((?s).*?)\s*$ with Go's \s and $.
_MATCHER_RE = re.compile(
    r"\A[\t\n\f\r ]*([a-zA-Z_:][a-zA-Z0-9_:]*)[\t\n\f\r ]*(=~|=|!=|!~)"
    r"[\t\n\f\r ]*(.*?)[\t\n\f\r ]*\Z",
    re.DOTALL,
)
_NAME_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
# Go's strings.TrimSpace (unicode.IsSpace), which ParseMatchers applies to its last token.
_GO_TRIM_SPACE = (
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009"
    "\u200a\u2028\u2029\u202f\u205f\u3000"
)


class MatchOp(StrEnum):
    EQUAL = "="
    NOT_EQUAL = "!="
    REGEX = "=~"
    NOT_REGEX = "!~"


@dataclass(frozen=True, slots=True)
class Matcher:
    """One parsed matcher. Build it with :func:`parse_matcher` or :meth:`Matcher.of`."""

    name: str
    op: MatchOp
    value: str
    _regex: LinearRegex | None = field(default=None, compare=False, repr=False)
    _literals: frozenset[str] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def of(cls, name: str, op: MatchOp | str, value: str) -> Matcher:
        """Build a matcher; a bad regex raises :class:`MatcherSyntaxError` (column in ``value``)."""
        op = MatchOp(op)
        if op in (MatchOp.REGEX, MatchOp.NOT_REGEX):
            translation = translate(value)
            return cls(name, op, value, LinearRegex(value), translation.literals)
        return cls(name, op, value)

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.name, "")
        op = self.op
        if op is MatchOp.EQUAL:
            return actual == self.value
        if op is MatchOp.NOT_EQUAL:
            return actual != self.value
        assert self._regex is not None
        found = self._regex.matches(actual)
        return found if op is MatchOp.REGEX else not found

    @property
    def matches_empty(self) -> bool:
        """Whether an alert *without* this label matches; such matchers cannot be indexed."""
        return self.matches({})

    @property
    def indexable_values(self) -> frozenset[str] | None:
        """The few non-empty values this matcher accepts, when that is all it accepts.

        ``alertname="X"`` gives ``{"X"}`` and ``tier=~"gold|silver"`` gives both; ``!=``,
        ``!~``, open regexes and anything that accepts the empty string give None. This is what
        lets :class:`~bot.matching.index.MatcherIndex` look runbooks up instead of scanning.
        """
        if self.op is MatchOp.EQUAL:
            return frozenset((self.value,)) if self.value else None
        if self.op is MatchOp.REGEX and self._literals is not None and "" not in self._literals:
            return self._literals
        return None

    def __str__(self) -> str:
        """Alertmanager's ``String()``: the value always quoted, so it parses back unchanged."""
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'{self.name}{self.op.value}"{escaped}"'


def parse_matcher(text: str) -> Matcher:
    """Parse one matcher string, raising :class:`MatcherSyntaxError` with the column at fault."""
    found = _MATCHER_RE.match(text)
    if found is None:
        raise _format_error(text)
    name, op, raw = found.group(1), found.group(2), found.group(3)
    value, columns = _unescape(raw, text, found.start(3))
    try:
        return Matcher.of(name, op, value)
    except MatcherSyntaxError as err:
        raise MatcherSyntaxError(
            f"invalid regular expression {value!r} in matcher {text!r}: {err}",
            text,
            columns[min(max(err.column, 1), len(columns)) - 1],
        ) from None


def parse_matchers(text: str) -> list[Matcher]:
    """Parse a comma-separated list, as Alertmanager's ``ParseMatchers`` (config ``matchers:``).

    One leading ``{`` and one trailing ``}`` are dropped; commas inside double quotes do not
    split; a trailing comma is allowed. ``foo=a,b`` is therefore two matchers, the second bad.
    """
    start = 1 if text.startswith("{") else 0
    body = text[start:]
    if body.endswith("}"):
        body = body[:-1]
    tokens: list[tuple[int, str]] = []
    token_start, inside_quotes, escaped = 0, False, False
    for index, char in enumerate(body):
        if char == "," and not inside_quotes:
            tokens.append((token_start, body[token_start:index]))
            token_start = index + 1
            continue
        if char == '"':
            if escaped:
                escaped = False
            else:
                inside_quotes = not inside_quotes
        elif char == "\\":
            escaped = not escaped
        elif char != ",":
            escaped = False
    last = body[token_start:]
    stripped = last.lstrip(_GO_TRIM_SPACE)
    if stripped.rstrip(_GO_TRIM_SPACE):
        offset = token_start + len(last) - len(stripped)
        tokens.append((offset, stripped.rstrip(_GO_TRIM_SPACE)))
    matchers: list[Matcher] = []
    for offset, token in tokens:
        try:
            matchers.append(parse_matcher(token))
        except MatcherSyntaxError as err:
            raise MatcherSyntaxError(str(err), text, start + offset + err.column) from None
    return matchers


def _unescape(raw: str, text: str, raw_start: int) -> tuple[str, list[int]]:
    """Go's unescaping of the value; also the 1-based column in ``text`` of each value index."""
    quoted = raw.startswith('"')
    body = raw[1:] if quoted else raw
    base = raw_start + (1 if quoted else 0)
    for index, char in enumerate(body):
        if "\ud800" <= char <= "\udfff":
            raise MatcherSyntaxError(
                f"matcher value is not valid UTF-8 (lone surrogate U+{ord(char):04X}): {text!r}",
                text,
                base + index + 1,
            )
    out: list[str] = []
    columns: list[int] = []
    escaped = False
    last = len(body) - 1
    for index, char in enumerate(body):
        column = base + index + 1
        if escaped:
            escaped = False
            if char == "n":
                out.append("\n")
            elif char in '"\\':
                out.append(char)
            else:  # a spurious escape: the backslash is literal
                out.append("\\")
                columns.append(column - 1)
                out.append(char)
                columns.append(column)
                continue
            columns.append(column - 1)
            continue
        if char == "\\" and index < last:
            escaped = True
            continue
        if char == '"':
            if not quoted or index < last:
                raise MatcherSyntaxError(
                    f"matcher value contains an unescaped double quote: {text!r}; "
                    'write it as \\" inside the value',
                    text,
                    column,
                )
            quoted = False
            continue
        out.append(char)
        columns.append(column)
    if quoted:
        raise MatcherSyntaxError(
            f"matcher value is missing its closing double quote: {text!r}",
            text,
            base + len(body) + 1,
        )
    columns.append(base + len(body) + (0 if raw.startswith('"') else 1))
    return "".join(out), columns


def _format_error(text: str) -> MatcherSyntaxError:
    """Say which of the three parts is wrong: the name, or the operator after it."""
    start = len(text) - len(text.lstrip(_GO_SPACE))
    if start == len(text):
        return MatcherSyntaxError(
            f'empty matcher {text!r}: expected NAME OP VALUE, e.g. alertname="HighLatency"',
            text,
            start + 1,
        )
    name = _NAME_RE.match(text, start)
    if name is None:
        return MatcherSyntaxError(
            f"bad matcher format {text!r}: a label name must start with a letter, _ or :, "
            f"not {text[start]!r}",
            text,
            start + 1,
        )
    after = name.end() + len(text[name.end() :]) - len(text[name.end() :].lstrip(_GO_SPACE))
    seen = repr(text[after]) if after < len(text) else "the end"
    return MatcherSyntaxError(
        f"bad matcher format {text!r}: expected =, !=, =~ or !~ after label name "
        f"{name.group()!r}, found {seen} (label names may contain only letters, digits, _ and :)",
        text,
        after + 1,
    )
