"""Write a parsed Go regex as a Python pattern, and list its strings when they are few.

The pattern uses only constructs Python's ``re`` and Go read alike: escaped literals, explicit
code-point classes, non-capturing groups, plain quantifiers, ``\\A``/``\\Z`` and scoped
``(?m:...)``/``(?a:...)`` assertions.
"""

from __future__ import annotations

import re

from bot.matching.goregex._charset import MAX_RUNE, Ranges, negate
from bot.matching.goregex._tree import (
    Alternate,
    Assert,
    CharClass,
    Concat,
    Literal,
    Node,
    Repeat,
)


def to_python(node: Node) -> str:
    text, _ = _emit_part(node)
    return text


def _emit_part(node: Node) -> tuple[str, bool]:
    """The Python text for ``node`` and whether it is a single atom a quantifier may follow."""
    if isinstance(node, Literal):
        return _literal_text(node.char), True
    if isinstance(node, CharClass):
        return _class_text(node.ranges), True
    if isinstance(node, Assert):
        return node.value, False
    if isinstance(node, Repeat):
        sub, atom = _emit_part(node.sub)
        if not atom:
            sub = f"(?:{sub})"
        return sub + _quantifier(node) + ("" if node.greedy else "?"), False
    if isinstance(node, Concat):
        parts = []
        for item in node.items:
            text, _ = _emit_part(item)
            parts.append(f"(?:{text})" if isinstance(item, Alternate) else text)
        return "".join(parts), False
    return "|".join(_emit_part(item)[0] for item in node.items), False


def _quantifier(node: Repeat) -> str:
    low, high = node.min, node.max
    if high < 0:
        return {0: "*", 1: "+"}.get(low, f"{{{low},}}")
    if (low, high) == (0, 1):
        return "?"
    return f"{{{low}}}" if low == high else f"{{{low},{high}}}"


def _literal_text(code: int) -> str:
    return re.escape(chr(code)) if 0x20 <= code < 0x7F else _hex(code)


def _class_char(code: int) -> str:
    char = chr(code)
    return char if char.isascii() and char.isalnum() else _hex(code)


def _hex(code: int) -> str:
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def _class_text(ranges: Ranges) -> str:
    if not ranges:
        return "[^\\x00-\\U0010ffff]"
    if ranges == ((0, MAX_RUNE),):
        return "(?s:.)"
    if ranges == ((0, 9), (11, MAX_RUNE)):
        return "."
    if len(ranges) == 1 and ranges[0][0] == ranges[0][1]:
        return _literal_text(ranges[0][0])
    complement = negate(ranges)
    negated = len(complement) < len(ranges)
    body = "".join(
        _class_char(low) if low == high else f"{_class_char(low)}-{_class_char(high)}"
        for low, high in (complement if negated else ranges)
    )
    return f"[^{body}]" if negated else f"[{body}]"


def finite_strings(node: Node, limit: int) -> set[str] | None:
    """Every string ``node`` matches, if there are at most ``limit``; else None."""
    if isinstance(node, Literal):
        return {chr(node.char)}
    if isinstance(node, CharClass):
        if sum(high - low + 1 for low, high in node.ranges) > limit:
            return None
        return {chr(code) for low, high in node.ranges for code in range(low, high + 1)}
    if isinstance(node, Concat):
        product = {""}
        for item in node.items:
            part = finite_strings(item, limit)
            if part is None or len(product) * len(part) > limit:
                return None
            product = {left + right for left in product for right in part}
        return product
    if isinstance(node, Alternate):
        union: set[str] = set()
        for item in node.items:
            part = finite_strings(item, limit)
            if part is None:
                return None
            union |= part
            if len(union) > limit:
                return None
        return union
    if isinstance(node, Repeat) and node.max >= 0:
        part = finite_strings(node.sub, limit)
        if part is None:
            return None
        power: set[str] = {""}
        found: set[str] = set()
        for count in range(node.max + 1):
            if count >= node.min:
                found |= power
            if len(found) > limit:
                return None
            if count < node.max:
                if len(power) * len(part) > limit:
                    return None
                power = {left + right for left in power for right in part}
        return found
    return None
