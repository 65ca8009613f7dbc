"""Judging a verify check: the values before and after a mitigation, against its condition.

Pure functions, so every rule is tested without Prometheus: ``recovered`` when the condition
holds, ``worse`` when the value moved the wrong way (see
:meth:`bot.runbooks.conditions.Condition.worse`), ``unknown`` when a value is missing (the
reason says why), otherwise ``not_recovered``. A mitigation's verdict is ``worse`` if any check
is, ``recovered`` if all are, ``unknown`` if any is, else ``not_recovered``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from bot.runbooks.conditions import Condition


class Verdict(StrEnum):
    RECOVERED = "recovered"
    NOT_RECOVERED = "not_recovered"
    WORSE = "worse"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One check of one verification, as the timeline and the API show it."""

    name: str
    query: str  # rendered, with the incident's label values escaped in
    condition: str
    before: float | None
    after: float | None
    verdict: Verdict
    reason: str | None = None

    def as_details(self) -> dict[str, Any]:
        out = asdict(self)
        out["verdict"] = self.verdict.value
        return out


def judge(
    condition: Condition,
    before: float | None,
    after: float | None,
    *,
    before_reason: str | None = None,
    after_reason: str | None = None,
) -> tuple[Verdict, str | None]:
    """The verdict of one check and, when unknown, why."""
    if after is None:
        return Verdict.UNKNOWN, f"now: {after_reason or 'no value'}"
    met = condition.met(before, after)
    if met is None:
        return Verdict.UNKNOWN, f"before: {before_reason or 'no value'}"
    if met:
        return Verdict.RECOVERED, None
    if condition.worse(before, after):
        return Verdict.WORSE, None
    return Verdict.NOT_RECOVERED, None


def overall(results: Sequence[CheckResult]) -> Verdict:
    verdicts = {result.verdict for result in results}
    if Verdict.WORSE in verdicts:
        return Verdict.WORSE
    if verdicts == {Verdict.RECOVERED}:
        return Verdict.RECOVERED
    if Verdict.UNKNOWN in verdicts:
        return Verdict.UNKNOWN
    return Verdict.NOT_RECOVERED


def final(verdict: Verdict) -> bool:
    """A verdict that ends the checks before the deadline (``worse`` at once: it may hurt)."""
    return verdict in (Verdict.RECOVERED, Verdict.WORSE)


def number(value: float | None) -> str:
    """A value for people: four significant digits, ``?`` when unknown."""
    if value is None:
        return "?"
    return f"{value:.4g}"


def describe(results: Sequence[CheckResult]) -> str:
    """``tool failure rate 0.31 → 0 (< 0.05)``, one per check, for the thread and Slack."""
    parts = []
    for result in results:
        values = f"{number(result.before)} → {number(result.after)}"
        text = f"{result.name} {values} ({result.condition})"
        if result.reason:
            text += f" [{result.reason}]"
        parts.append(text)
    return "; ".join(parts)
