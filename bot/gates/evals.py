"""Evaluation reports → named scores.

Two formats (docs/release-gates.md):

* Ballast's own, the simplest thing a pipeline can write:
  ``{"metrics": {"groundedness": 0.86, "refusal_rate": 0.02}}``;
* promptfoo's ``promptfoo eval -o results.json`` (``OutputFile``: ``results`` holds
  ``EvaluateSummaryV3`` with ``results[]`` and ``stats``): ``pass_rate`` (successes over all
  tests), ``score`` (the mean of each test's ``score``) and, per named score, its mean over the
  tests that have it (``namedScores``).
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any


class EvalReportError(ValueError):
    """The report is neither format, or a value in it is not a number; says where."""


def scores_of(report: Any) -> dict[str, float]:
    if not isinstance(report, dict):
        raise EvalReportError("the report must be a JSON object")
    if "metrics" in report:
        return _simple(report["metrics"])
    results = report.get("results")
    if isinstance(results, dict) and isinstance(results.get("results"), list):
        return _promptfoo(results)
    raise EvalReportError(
        'unknown report format: expected {"metrics": {name: number}} or promptfoo\'s '
        "`promptfoo eval -o results.json` output (results.results[] and results.stats)"
    )


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise EvalReportError(f"{where}: {value!r} is not a finite number")
    return float(value)


def _simple(metrics: Any) -> dict[str, float]:
    if not isinstance(metrics, dict) or not metrics:
        raise EvalReportError("metrics: must be an object of metric names to numbers")
    return {str(name): _number(value, f"metrics.{name}") for name, value in metrics.items()}


def _promptfoo(summary: dict[str, Any]) -> dict[str, float]:
    tests = summary["results"]
    if not tests:
        raise EvalReportError("results.results: the report holds no test results")
    stats = summary.get("stats") or {}
    passed = sum(1 for t in tests if isinstance(t, dict) and t.get("success") is True)
    total = len(tests)
    if isinstance(stats, dict) and {"successes", "failures"} <= stats.keys():
        passed = int(_number(stats["successes"], "results.stats.successes"))
        total = passed + int(_number(stats["failures"], "results.stats.failures"))
        total += int(_number(stats.get("errors", 0), "results.stats.errors"))
    scores: dict[str, float] = {"pass_rate": passed / total if total else 0.0}
    plain = [
        _number(t["score"], f"results.results[{i}].score")
        for i, t in enumerate(tests)
        if isinstance(t, dict) and t.get("score") is not None
    ]
    if plain:
        scores["score"] = sum(plain) / len(plain)
    named: defaultdict[str, list[float]] = defaultdict(list)
    for i, test in enumerate(tests):
        for name, value in ((test or {}).get("namedScores") or {}).items():
            named[str(name)].append(_number(value, f"results.results[{i}].namedScores.{name}"))
    scores.update({name: sum(values) / len(values) for name, values in named.items()})
    return scores
