"""Go 1.19's regexp/syntax parser (Perl flags, as ``regexp.Compile`` uses), reduced to a tree.

It takes the same decisions Go takes — what is an error, with Go's error code, and what each
construct means — and nothing more: no simplification, no program. The tree is what
:mod:`._python` writes out for Python's ``re``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.matching.goregex._charset import (
    MAX_RUNE,
    PERL_GROUPS,
    POSIX_GROUPS,
    Range,
    Ranges,
    clean,
    fold,
    fold_orbits,
    negate,
    unicode_table,
)
from bot.matching.goregex._tree import (
    Alternate,
    Assert,
    CharClass,
    Concat,
    Literal,
    Node,
    Repeat,
    concat,
)

MAX_REPEAT = 1000  # Go: largest {n,m} count, also through nested repetitions
MAX_NESTING = 50  # ours: Python's re recurses per group and fails near 300 levels

# Go's regexp/syntax error codes, so messages read like Alertmanager's.
INVALID_CHAR_RANGE = "invalid character class range"
INVALID_ESCAPE = "invalid escape sequence"
INVALID_NAMED_CAPTURE = "invalid named capture"
INVALID_PERL_OP = "invalid or unsupported Perl syntax"
INVALID_REPEAT_OP = "invalid nested repetition operator"
INVALID_REPEAT_SIZE = "invalid repeat count"
MISSING_BRACKET = "missing closing ]"
MISSING_PAREN = "missing closing )"
MISSING_REPEAT_ARGUMENT = "missing argument to repetition operator"
TRAILING_BACKSLASH = "trailing backslash at end of expression"
UNEXPECTED_PAREN = "unexpected )"
NESTS_TOO_DEEPLY = "expression nests too deeply"

HINTS = {
    INVALID_ESCAPE: "Go accepts \\a \\f \\t \\n \\r \\v, \\xHH, \\x{H…}, octal \\0NN, \\d \\s \\w, "
    "\\b \\B \\A \\z, \\pX and a backslash before punctuation",
    INVALID_PERL_OP: "Go's RE2 engine has no look-around or back-references; "
    "its only flags are i, m, s and U",
    MISSING_REPEAT_ARGUMENT: "escape the operator with a backslash to match it literally",
    INVALID_REPEAT_OP: "Go refuses a repetition right after another; group the inner one, "
    "as in (?:a*)*",
    INVALID_REPEAT_SIZE: "counts may be at most 1000, also multiplied through nested repeats",
    NESTS_TOO_DEEPLY: f"Ballast allows at most {MAX_NESTING} nested groups",
}

# Parser flags (a subset of Go's regexp/syntax.Flags).
_FOLD_CASE = 1
_DOT_NL = 2
_ONE_LINE = 4
_NON_GREEDY = 8
_ALL_FLAGS = _FOLD_CASE | _DOT_NL | _ONE_LINE | _NON_GREEDY

_OCTAL = "01234567"
_C_ESCAPES = {"a": 0x07, "f": 0x0C, "n": 0x0A, "r": 0x0D, "t": 0x09, "v": 0x0B}


class GoError(Exception):
    """A parse error as Go reports it; ``translate`` turns it into a MatcherSyntaxError."""

    def __init__(self, code: str, expr: str, pos: int, hint: str | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.expr = expr
        self.pos = pos
        self.hint = hint or HINTS.get(code)


PREFIX = "^(?:"
SUFFIX = ")$"


@dataclass(slots=True)
class Frame:
    saved_flags: int
    open_at: int  # index of "(" in the whole pattern; -1 for the top level
    alternatives: list[Node]
    items: list[Node]

    def close(self) -> Node:
        branches = [*self.alternatives, concat(self.items)]
        return branches[0] if len(branches) == 1 else Alternate(tuple(branches))


class Parser:
    """Go's regexp/syntax parser with Perl flags, reduced to what decides meaning and errors."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.flags = _ONE_LINE
        self.frames = [Frame(self.flags, -1, [], [])]
        # Where the value and Alertmanager's "^(?:" … ")$" around it paired up wrongly.
        self.closed_by_wrapper: int | None = None  # the value's "(" closed by the wrapper's ")"
        self.wrapper_closed_at: int | None = None  # the value's ")" that closed the wrapper

    def parse(self) -> Node:
        text, size = self.text, len(self.text)
        pos = 0
        last_repeat: int | None = None
        while pos < size:
            char = text[pos]
            repeat_at: int | None = None
            if char == "(":
                pos = self._perl_group(pos) if text.startswith("(?", pos) else self._open(pos, 1)
            elif char == "|":
                frame = self.frames[-1]
                frame.alternatives.append(concat(frame.items))
                frame.items = []
                pos += 1
            elif char == ")":
                self._close(pos)
                pos += 1
            elif char == "^":
                one_line = self.flags & _ONE_LINE
                self._push(Assert.BEGIN_TEXT if one_line else Assert.BEGIN_LINE)
                pos += 1
            elif char == "$":
                one_line = self.flags & _ONE_LINE
                self._push(Assert.END_TEXT if one_line else Assert.END_LINE)
                pos += 1
            elif char == ".":
                dot_nl = self.flags & _DOT_NL
                self._push(CharClass(((0, MAX_RUNE),) if dot_nl else ((0, 9), (11, MAX_RUNE))))
                pos += 1
            elif char == "[":
                pos = self._char_class(pos)
            elif char in "*+?":
                low, high = {"*": (0, -1), "+": (1, -1), "?": (0, 1)}[char]
                repeat_at = pos
                pos = self._repeat(pos, pos + 1, low, high, last_repeat, counted=False)
            elif char == "{":
                counts = _repeat_counts(text, pos)
                if counts is None:  # not a repetition: "{" is a literal
                    self._literal(ord("{"))
                    pos += 1
                else:
                    low, high, end = counts
                    if low < 0 or low > MAX_REPEAT or high > MAX_REPEAT or 0 <= high < low:
                        raise GoError(INVALID_REPEAT_SIZE, text[pos:end], pos)
                    repeat_at = pos
                    pos = self._repeat(pos, end, low, high, last_repeat, counted=True)
            elif char == "\\":
                pos = self._backslash(pos)
            else:
                self._literal(ord(char))
                pos += 1
            last_repeat = repeat_at
        if len(self.frames) > 1:
            unclosed = self.frames[-1].open_at
            if len(self.frames) == 2 and unclosed == 1:  # Alertmanager's own "(?:"
                if self.closed_by_wrapper is None:
                    raise GoError(
                        MISSING_PAREN,
                        "",
                        size - len(SUFFIX),
                        "the end of the value - a trailing backslash, \\Q without \\E or an "
                        "unfinished (? - swallowed the ) that Alertmanager adds after it",
                    )
                unclosed = self.closed_by_wrapper
            raise GoError(MISSING_PAREN, text[unclosed : unclosed + 1], unclosed)
        return self.frames[0].close()

    def _push(self, node: Node) -> None:
        self.frames[-1].items.append(node)

    def _literal(self, char: int) -> None:
        if self.flags & _FOLD_CASE:
            orbit = fold_orbits().get(char)
            if orbit is not None:
                self._push(CharClass(clean([(c, c) for c in orbit])))
                return
        self._push(Literal(char))

    def _open(self, pos: int, width: int) -> int:
        if len(self.frames) > MAX_NESTING + 1:
            raise GoError(NESTS_TOO_DEEPLY, self.text[pos : pos + width], pos)
        self.frames.append(Frame(self.flags, pos, [], []))
        return pos + width

    def _close(self, pos: int) -> None:
        wrapper_paren = pos == len(self.text) - len(SUFFIX)
        if len(self.frames) == 1:
            culprit = self.wrapper_closed_at if wrapper_paren else None
            raise GoError(UNEXPECTED_PAREN, ")", pos if culprit is None else culprit)
        frame = self.frames.pop()
        if wrapper_paren and frame.open_at != 1:
            self.closed_by_wrapper = frame.open_at
        if frame.open_at == 1 and not wrapper_paren:
            self.wrapper_closed_at = pos
        self.flags = frame.saved_flags
        self._push(frame.close())

    def _perl_group(self, pos: int) -> int:
        """``(?P<name>``, ``(?flags)`` or ``(?flags:`` — Go 1.19 has no ``(?<name>``."""
        text = self.text
        if len(text) - pos > 4 and text[pos + 2] == "P" and text[pos + 3] == "<":
            end = text.find(">", pos)
            if end < 0:
                raise GoError(INVALID_NAMED_CAPTURE, text[pos:], pos)
            name = text[pos + 4 : end]
            if not name or not all(c == "_" or (c.isascii() and c.isalnum()) for c in name):
                raise GoError(INVALID_NAMED_CAPTURE, text[pos : end + 1], pos)
            return self._open(pos, end + 1 - pos)
        flags, sign, saw_flag = self.flags, 1, False
        at = pos + 2
        while at < len(text):
            char = text[at]
            at += 1
            if char == "i":
                flags |= _FOLD_CASE
            elif char == "m":
                flags &= ~_ONE_LINE
            elif char == "s":
                flags |= _DOT_NL
            elif char == "U":
                flags |= _NON_GREEDY
            elif char == "-" and sign > 0:
                # Work on the complement so the same |= and &= clear flags instead.
                sign, flags, saw_flag = -1, ~flags, False
                continue
            elif char in ":)" and (sign > 0 or saw_flag):
                if sign < 0:
                    flags = ~flags
                if char == ":":
                    self._open(pos, at - pos)
                self.flags = flags & _ALL_FLAGS
                return at
            else:
                break
            saw_flag = True
        raise GoError(INVALID_PERL_OP, text[pos:at], pos)

    def _repeat(
        self,
        before: int,
        after: int,
        low: int,
        high: int,
        last_repeat: int | None,
        *,
        counted: bool,
    ) -> int:
        text = self.text
        greedy = not self.flags & _NON_GREEDY
        if after < len(text) and text[after] == "?":
            after += 1
            greedy = not greedy
        if last_repeat is not None:
            raise GoError(INVALID_REPEAT_OP, text[last_repeat:after], last_repeat)
        items = self.frames[-1].items
        if not items:
            raise GoError(MISSING_REPEAT_ARGUMENT, text[before:after], before)
        node = Repeat(items[-1], low, high, greedy, counted)
        if counted and (low >= 2 or high >= 2) and not _repeat_is_valid(node, MAX_REPEAT):
            raise GoError(INVALID_REPEAT_SIZE, text[before:after], before)
        items[-1] = node
        return after

    def _backslash(self, pos: int) -> int:
        text = self.text
        following = text[pos + 1 : pos + 2]
        if following in ("A", "z", "b", "B"):
            self._push(
                {
                    "A": Assert.BEGIN_TEXT,
                    "z": Assert.END_TEXT,
                    "b": Assert.WORD_BOUNDARY,
                    "B": Assert.NO_WORD_BOUNDARY,
                }[following]
            )
            return pos + 2
        if following == "C":  # any byte: Go refuses it
            raise GoError(INVALID_ESCAPE, "\\C", pos)
        if following == "Q":  # \Q…\E: everything between is literal
            end = text.find("\\E", pos + 2)
            for literal in text[pos + 2 : end if end >= 0 else len(text)]:
                self._literal(ord(literal))
            return end + 2 if end >= 0 else len(text)
        if following in ("p", "P"):
            ranges, pos = self._unicode_class(pos)
            self._push(CharClass(ranges))
            return pos
        group = PERL_GROUPS.get(text[pos : pos + 2])
        if group is not None:
            self._push(CharClass(self._group(group)))
            return pos + 2
        code, pos = self._escape(pos)
        self._literal(code)
        return pos

    def _escape(self, pos: int) -> tuple[int, int]:
        """One escaped character (Go's parseEscape): its code point and where parsing resumes."""
        text, size = self.text, len(self.text)
        at = pos + 1
        if at >= size:
            raise GoError(TRAILING_BACKSLASH, "", pos)
        char = text[at]
        at += 1
        if char.isascii() and not char.isalnum():
            return ord(char), at
        if char in _OCTAL and (char == "0" or (at < size and text[at] in _OCTAL)):
            value = int(char)
            for _ in range(2):
                if at < size and text[at] in _OCTAL:
                    value = value * 8 + int(text[at])
                    at += 1
            return value, at
        if char == "x" and at < size:
            digit = text[at]
            at += 1
            if digit == "{":
                value, digits = 0, 0
                while at < size and text[at] != "}":
                    nibble = _unhex(text[at])
                    at += 1
                    value = value * 16 + nibble
                    if nibble < 0 or value > MAX_RUNE:
                        raise GoError(INVALID_ESCAPE, text[pos:at], pos)
                    digits += 1
                if at >= size or digits == 0:
                    raise GoError(INVALID_ESCAPE, text[pos : at + 1], pos)
                return value, at + 1
            high = _unhex(digit)
            low = _unhex(text[at]) if at < size else -1
            at = min(at + 1, size)
            if high >= 0 and low >= 0:
                return high * 16 + low, at
        elif char in _C_ESCAPES:
            return _C_ESCAPES[char], at
        raise GoError(INVALID_ESCAPE, text[pos:at], pos)

    def _group(self, group: tuple[int, Ranges]) -> Ranges:
        sign, ranges = group
        if self.flags & _FOLD_CASE:
            ranges = fold(ranges)
        return negate(ranges) if sign < 0 else ranges

    def _unicode_class(self, pos: int) -> tuple[Ranges, int]:
        r"""``\pL``, ``\p{Lu}``, ``\p{^L}``, ``\PL``; Go's general categories and ``Any``."""
        text = self.text
        sign = 1 if text[pos + 1] == "p" else -1
        at = pos + 2
        if at < len(text) and text[at] == "{":
            end = text.find("}", pos)
            if end < 0:
                raise GoError(INVALID_CHAR_RANGE, text[pos:], pos)
            name, sequence, at = text[at + 1 : end], text[pos : end + 1], end + 1
        else:
            name, at = text[at : at + 1], min(at + 1, len(text))
            sequence = text[pos:at]
        if name.startswith("^"):
            sign, name = -sign, name[1:]
        ranges = unicode_table(name)
        if ranges is None:
            raise GoError(
                INVALID_CHAR_RANGE,
                sequence,
                pos,
                "Ballast knows the Unicode general categories such as L, Lu, N, Nd, P, S, Z "
                "and Any, but not scripts such as Greek; list the characters in [...] instead",
            )
        return self._group((sign, ranges)), at

    def _char_class(self, pos: int) -> int:
        """``[...]`` as Go parses it: a leading ``]`` is literal, so is a ``-`` ending no range."""
        text, size = self.text, len(self.text)
        at = pos + 1
        negated = at < size and text[at] == "^"
        if negated:
            at += 1
        collected: list[Range] = []
        first = True
        while at >= size or text[at] != "]" or first:
            first = False
            if size - at > 2 and text[at] == "[" and text[at + 1] == ":":
                end = text.find(":]", at + 2)
                if end >= 0:
                    name = text[at : end + 2]
                    if name not in POSIX_GROUPS:
                        raise GoError(INVALID_CHAR_RANGE, name, at)
                    collected.extend(self._group(POSIX_GROUPS[name]))
                    at = end + 2
                    continue
            if size - at >= 2 and text[at] == "\\" and text[at + 1] in "pP":
                ranges, at = self._unicode_class(at)
                collected.extend(ranges)
                continue
            group = PERL_GROUPS.get(text[at : at + 2])
            if group is not None:
                collected.extend(self._group(group))
                at += 2
                continue
            start = at
            low, at = self._class_char(at, pos)
            high = low
            if size - at >= 2 and text[at] == "-" and text[at + 1] != "]":
                high, at = self._class_char(at + 1, pos)
                if high < low:
                    raise GoError(INVALID_CHAR_RANGE, text[start:at], start)
            pair: Ranges = ((low, high),)
            collected.extend(fold(pair) if self.flags & _FOLD_CASE else pair)
        ranges = clean(collected)
        self._push(CharClass(negate(ranges) if negated else ranges))
        return at + 1

    def _class_char(self, at: int, class_start: int) -> tuple[int, int]:
        if at >= len(self.text):
            raise GoError(MISSING_BRACKET, self.text[class_start:], class_start)
        if self.text[at] == "\\":
            return self._escape(at)
        return ord(self.text[at]), at + 1


_REPEAT_COUNTS = re.compile(r"\{(0|[1-9][0-9]*)(,(0|[1-9][0-9]*)?)?\}")


def _repeat_counts(text: str, pos: int) -> tuple[int, int, int] | None:
    """``{n}``, ``{n,}``, ``{n,m}`` at ``pos`` as (min, max or -1, end); None if not that form."""
    found = _REPEAT_COUNTS.match(text, pos)
    if found is None:
        return None
    low = _go_int(found.group(1))
    if found.group(2) is None:
        return low, low, found.end()
    if found.group(3) is None:
        return low, -1, found.end()
    high = _go_int(found.group(3))
    return (-1 if high < 0 else low), high, found.end()


def _go_int(digits: str) -> int:
    return -1 if len(digits) > 8 else int(digits)  # Go gives up at 1e8: "invalid repeat count"


def _repeat_is_valid(node: Node, budget: int) -> bool:
    """Go's repeatIsValid: nested {n,m} counts, multiplied, stay within ``budget``."""
    if isinstance(node, Repeat) and node.counted:
        count = node.max
        if count == 0:
            return True
        if count < 0:
            count = node.min
        if count > budget:
            return False
        if count > 0:
            budget //= count
    if isinstance(node, Repeat):
        return _repeat_is_valid(node.sub, budget)
    if isinstance(node, Concat | Alternate):
        return all(_repeat_is_valid(item, budget) for item in node.items)
    return True


def _unhex(char: str) -> int:
    return int(char, 16) if len(char) == 1 and char in "0123456789abcdefABCDEF" else -1
