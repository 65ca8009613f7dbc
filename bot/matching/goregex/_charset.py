"""Sets of code points as Go's regexp builds them: classes, categories, case folding.

A set is a tuple of sorted, disjoint, non-adjacent ``(low, high)`` ranges. Go folds case into a
class *before* negating it, so ``(?i)[^k]`` excludes K and the Kelvin sign too; doing the same
here, and writing the result out as explicit ranges, keeps Python's own case rules out of it.
"""

from __future__ import annotations

import bisect
import unicodedata
from functools import cache

MAX_RUNE = 0x10FFFF

Range = tuple[int, int]
Ranges = tuple[Range, ...]

DIGIT: Ranges = ((0x30, 0x39),)
SPACE: Ranges = ((0x09, 0x0A), (0x0C, 0x0D), (0x20, 0x20))  # Go's \s has no \v
WORD: Ranges = ((0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A))
PERL_GROUPS: dict[str, tuple[int, Ranges]] = {
    "\\d": (1, DIGIT),
    "\\D": (-1, DIGIT),
    "\\s": (1, SPACE),
    "\\S": (-1, SPACE),
    "\\w": (1, WORD),
    "\\W": (-1, WORD),
}
POSIX_CLASSES: dict[str, Ranges] = {
    "alnum": ((0x30, 0x39), (0x41, 0x5A), (0x61, 0x7A)),
    "alpha": ((0x41, 0x5A), (0x61, 0x7A)),
    "ascii": ((0x00, 0x7F),),
    "blank": ((0x09, 0x09), (0x20, 0x20)),
    "cntrl": ((0x00, 0x1F), (0x7F, 0x7F)),
    "digit": DIGIT,
    "graph": ((0x21, 0x7E),),
    "lower": ((0x61, 0x7A),),
    "print": ((0x20, 0x7E),),
    "punct": ((0x21, 0x2F), (0x3A, 0x40), (0x5B, 0x60), (0x7B, 0x7E)),
    "space": ((0x09, 0x0D), (0x20, 0x20)),
    "upper": ((0x41, 0x5A),),
    "word": WORD,
    "xdigit": ((0x30, 0x39), (0x41, 0x46), (0x61, 0x66)),
}
POSIX_GROUPS: dict[str, tuple[int, Ranges]] = {
    **{f"[:{name}:]": (1, ranges) for name, ranges in POSIX_CLASSES.items()},
    **{f"[:^{name}:]": (-1, ranges) for name, ranges in POSIX_CLASSES.items()},
}
# Go 1.19's unicode.Categories: no Cn (unassigned) and no LC.
_CATEGORY_GROUPS = {
    "C": ("Cc", "Cf", "Co", "Cs"),
    "L": ("Lu", "Ll", "Lt", "Lm", "Lo"),
    "M": ("Mn", "Mc", "Me"),
    "N": ("Nd", "Nl", "No"),
    "P": ("Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po"),
    "S": ("Sm", "Sc", "Sk", "So"),
    "Z": ("Zs", "Zl", "Zp"),
}


def clean(ranges: list[Range] | Ranges) -> Ranges:
    """Sort and merge overlapping or adjacent ranges."""
    merged: list[list[int]] = []
    for low, high in sorted(ranges):
        if merged and low <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], high)
        else:
            merged.append([low, high])
    return tuple((low, high) for low, high in merged)


def negate(ranges: Ranges) -> Ranges:
    out: list[Range] = []
    next_low = 0
    for low, high in ranges:
        if next_low <= low - 1:
            out.append((next_low, low - 1))
        next_low = high + 1
    if next_low <= MAX_RUNE:
        out.append((next_low, MAX_RUNE))
    return tuple(out)


def _simple_fold_key(char: str) -> str:
    """Unicode simple case folding (CaseFolding.txt C+S), which is what Go's ``(?i)`` uses.

    ``str.casefold`` is full folding (ß → ss); where that yields several characters the simple
    mapping, when there is one, is the lower-case letter (ẞ → ß), else the character itself.
    """
    folded = char.casefold()
    if len(folded) == 1:
        return folded
    lower = char.lower()
    return lower if len(lower) == 1 else char


@cache
def fold_orbits() -> dict[int, tuple[int, ...]]:
    """Each case-sensitive code point and every code point it folds together with."""
    classes: dict[str, list[int]] = {}
    for code in range(0x41, 0x20000):
        classes.setdefault(_simple_fold_key(chr(code)), []).append(code)
    return {code: tuple(group) for group in classes.values() if len(group) > 1 for code in group}


@cache
def _foldable() -> list[int]:
    return sorted(fold_orbits())


def fold(ranges: Ranges) -> Ranges:
    """Add every case variant of every code point in ``ranges`` (Go's appendFoldedRange)."""
    orbits, foldable = fold_orbits(), _foldable()
    out = list(ranges)
    for low, high in ranges:
        start = bisect.bisect_left(foldable, low)
        stop = bisect.bisect_right(foldable, high)
        for code in foldable[start:stop]:
            out.extend((variant, variant) for variant in orbits[code])
    return clean(out)


@cache
def _categories() -> dict[str, Ranges]:
    spans: dict[str, list[Range]] = {}
    start, current = 0, unicodedata.category("\0")
    for code in range(1, MAX_RUNE + 2):
        category = unicodedata.category(chr(code)) if code <= MAX_RUNE else ""
        if category != current:
            spans.setdefault(current, []).append((start, code - 1))
            start, current = code, category
    spans.pop("Cn", None)
    tables = {name: clean(found) for name, found in spans.items()}
    for major, minors in _CATEGORY_GROUPS.items():
        tables[major] = clean([span for minor in minors for span in tables.get(minor, ())])
    return tables


def unicode_table(name: str) -> Ranges | None:
    if name == "Any":
        return ((0, MAX_RUNE),)
    return _categories().get(name)
