"""The condition a ``verify:`` check judges a value by: a threshold or a change since before.

``< 0.05``, ``<= 1``, ``> 0.9``, ``>= 10``, ``== 0``, ``!= 1``, or ``lower than before by 50%`` /
``higher than before by 20%``. Each condition also says which way is good, so a value that
moved the wrong way can be called ``worse`` rather than merely not recovered.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

# fullmatch: "$" would also accept a trailing newline.
_THRESHOLD = re.compile(r"\s*(<=|>=|==|!=|<|>)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*")
_RELATIVE = re.compile(r"\s*(lower|higher) than before by\s+(\d+(?:\.\d+)?)\s*%\s*")
_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}
WORSE_MARGIN = 0.10
"""A value is ``worse`` when it moved the wrong way by more than this share of its value before
(or at all, when it was 0): noise of a few percent is not a verdict."""

CONDITION_HELP = (
    'write "< 0.05", "<= 1", "> 0.9", ">= 10", "== 0", "!= 1", '
    '"lower than before by 50%" or "higher than before by 20%"'
)


class Good(StrEnum):
    """Which way the value should move for the mitigation to be working."""

    DOWN = "down"
    UP = "up"
    TOWARD = "toward"  # == x: toward x
    AWAY = "away"  # != x: any value but x; never "worse"


@dataclass(frozen=True, slots=True)
class Condition:
    text: str
    op: str  # a comparison operator, or "lower"/"higher" (than before)
    number: float  # the threshold, or the percentage

    @property
    def good(self) -> Good:
        if self.op in ("<", "<=", "lower"):
            return Good.DOWN
        if self.op in (">", ">=", "higher"):
            return Good.UP
        return Good.TOWARD if self.op == "==" else Good.AWAY

    def met(self, before: float | None, after: float) -> bool | None:
        """Whether ``after`` satisfies the condition; None when it needs ``before`` and has none."""
        if self.op in _OPERATORS:
            return _OPERATORS[self.op](after, self.number)
        if before is None:
            return None
        change = abs(before) * self.number / 100
        if self.op == "lower":
            return after <= before - change
        return after >= before + change

    def worse(self, before: float | None, after: float) -> bool:
        """Whether ``after`` moved the wrong way from ``before`` by more than the margin."""
        if before is None or self.good is Good.AWAY:
            return False
        if self.good is Good.TOWARD:
            was, now = abs(before - self.number), abs(after - self.number)
        elif self.good is Good.DOWN:
            was, now = before, after
        else:
            was, now = -before, -after
        return now - was > max(abs(was) * WORSE_MARGIN, 1e-12)


def parse_condition(text: str) -> Condition:
    """Raises ``ValueError`` naming the forms that are accepted."""
    found = _THRESHOLD.fullmatch(text)
    if found:
        return Condition(text.strip(), found.group(1), float(found.group(2)))
    found = _RELATIVE.fullmatch(text)
    if found:
        percent = float(found.group(2))
        if not 0 < percent <= 100 and found.group(1) == "lower":
            raise ValueError(f"lower than before by {percent:g}%: give a percentage in (0, 100]")
        if percent <= 0:
            raise ValueError(f"{found.group(1)} than before by {percent:g}%: give a percentage > 0")
        return Condition(text.strip(), found.group(1), percent)
    raise ValueError(f"cannot read the condition {text!r}; {CONDITION_HELP}")
