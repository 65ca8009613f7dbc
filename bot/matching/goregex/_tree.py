"""The parsed form of a Go regex: only what decides which strings it matches."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from bot.matching.goregex._charset import Ranges


class Assert(Enum):
    """Zero-width assertions; each value is its Python spelling."""

    BEGIN_TEXT = r"\A"
    END_TEXT = r"\Z"
    BEGIN_LINE = r"(?m:^)"
    END_LINE = r"(?m:$)"
    WORD_BOUNDARY = r"(?a:\b)"
    # Python's \B never matches an empty string; Go's does.
    NO_WORD_BOUNDARY = r"(?:(?a:\B)|\A\Z)"


@dataclass(frozen=True, slots=True)
class Literal:
    char: int


@dataclass(frozen=True, slots=True)
class CharClass:
    ranges: Ranges  # sorted, disjoint, not adjacent


@dataclass(frozen=True, slots=True)
class Repeat:
    sub: Node
    min: int
    max: int  # -1: unbounded
    greedy: bool
    counted: bool  # written as {n,m}; Go's size rule only counts these


@dataclass(frozen=True, slots=True)
class Concat:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Alternate:
    items: tuple[Node, ...]


Node = Literal | CharClass | Assert | Repeat | Concat | Alternate


def concat(items: list[Node]) -> Node:
    return items[0] if len(items) == 1 else Concat(tuple(items))
