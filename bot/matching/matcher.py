"""Alertmanager label matchers: ``name="value"``, ``name!="v"``, ``name=~"re"``, ``name!~"re"``.

Parsing follows Alertmanager 0.25's ``pkg/labels/parse.go`` exactly: the same grammar, the same
unescaping (``\\n``, ``\\"`` and ``\\\\``; any other escape keeps its backslash), quotes optional,
surrounding white space ignored. Regexes are anchored (``^(?:re)$``) and, like Go's RE2, may not
use look-around or back-references. A missing label has the value ``""``, so ``foo=""`` matches
alerts without ``foo`` and ``foo=~".*"`` matches every alert.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from bot.errors import MatcherSyntaxError

_MATCHER_RE = re.compile(r"^\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(=~|=|!=|!~)\s*((?s:.*?))\s*$")


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
    _regex: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def of(cls, name: str, op: MatchOp | str, value: str) -> Matcher:
        op = MatchOp(op)
        regex = compile_anchored(value) if op in (MatchOp.REGEX, MatchOp.NOT_REGEX) else None
        return cls(name, op, value, regex)

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.name, "")
        if self.op is MatchOp.EQUAL:
            return actual == self.value
        if self.op is MatchOp.NOT_EQUAL:
            return actual != self.value
        assert self._regex is not None
        found = self._regex.fullmatch(actual) is not None
        return found if self.op is MatchOp.REGEX else not found

    @property
    def matches_empty(self) -> bool:
        """Whether an alert *without* this label matches; such matchers cannot be indexed."""
        return self.matches({})

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'{self.name}{self.op.value}"{escaped}"'


def parse_matcher(text: str) -> Matcher:
    """Parse one matcher string, raising :class:`MatcherSyntaxError` with the column at fault."""
    found = _MATCHER_RE.match(text)
    if found is None:
        raise MatcherSyntaxError(
            f'bad matcher format {text!r}: expected NAME OP VALUE, e.g. alertname="X", '
            "with OP one of =, !=, =~, !~ and NAME matching [a-zA-Z_:][a-zA-Z0-9_:]*",
            text,
            _first_bad_column(text),
        )
    name, op, raw = found.group(1), found.group(2), found.group(3)
    value_column = found.start(3) + 1
    value = _unescape(raw, text, value_column)
    try:
        return Matcher.of(name, op, value)
    except re.error as err:
        column = value_column + (1 if raw.startswith('"') else 0) + (err.pos or 0)
        raise MatcherSyntaxError(
            f"invalid regular expression {value!r} in matcher {text!r}: {err.msg}",
            text,
            column,
        ) from None
    except MatcherSyntaxError as err:
        raise MatcherSyntaxError(str(err), text, value_column) from None


def compile_anchored(pattern: str) -> re.Pattern[str]:
    """Compile as Alertmanager does (``^(?:p)$``), refusing what RE2 would refuse."""
    compiled = re.compile(f"(?:{pattern})")
    _reject_non_re2(pattern)
    return compiled


def _unescape(raw: str, text: str, column: int) -> str:
    expect_trailing_quote = raw.startswith('"')
    body = raw[1:] if expect_trailing_quote else raw
    offset = column + (1 if expect_trailing_quote else 0)
    out: list[str] = []
    escaped = False
    for index, char in enumerate(body):
        if escaped:
            escaped = False
            if char == "n":
                out.append("\n")
            elif char in '"\\':
                out.append(char)
            else:
                out.append("\\" + char)
            continue
        if char == "\\":
            if index < len(body) - 1:
                escaped = True
                continue
            out.append("\\")
        elif char == '"':
            if not expect_trailing_quote or index < len(body) - 1:
                raise MatcherSyntaxError(
                    f"matcher value contains an unescaped double quote: {text!r}; "
                    'escape it as \\" or remove it',
                    text,
                    offset + index,
                )
            expect_trailing_quote = False
        else:
            out.append(char)
    if expect_trailing_quote:
        raise MatcherSyntaxError(
            f"matcher value is missing its closing double quote: {text!r}",
            text,
            offset + len(body),
        )
    return "".join(out)


def _first_bad_column(text: str) -> int:
    stripped = len(text) - len(text.lstrip())
    name = re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", text[stripped:])
    if name is None:
        return stripped + 1
    rest = stripped + name.end()
    while rest < len(text) and text[rest].isspace():
        rest += 1
    return rest + 1


# Constructs Python's re accepts but Go's RE2 (and so Alertmanager) does not.
_NON_RE2_OPCODES = frozenset(
    {"ASSERT", "ASSERT_NOT", "GROUPREF", "GROUPREF_EXISTS", "ATOMIC_GROUP", "POSSESSIVE_REPEAT"}
)


def _reject_non_re2(pattern: str) -> None:
    from re import _parser  # type: ignore[attr-defined]

    def walk(items: object) -> None:
        for item in items:  # type: ignore[attr-defined]
            op, arg = item
            if str(op) in _NON_RE2_OPCODES:
                raise MatcherSyntaxError(
                    f"regular expression {pattern!r} uses {str(op).lower().replace('_', ' ')}, "
                    "which Alertmanager's RE2 engine does not support",
                    pattern,
                )
            for sub in arg if isinstance(arg, tuple | list) else (arg,):
                if isinstance(sub, _parser.SubPattern):
                    walk(sub)
                elif isinstance(sub, list | tuple):
                    for part in sub:
                        if isinstance(part, _parser.SubPattern):
                            walk(part)

    walk(_parser.parse(pattern))
