"""``ballast runbooks test``: every runbook's example alerts, run against the whole catalog.

Like ``promtool test rules``: an example that expects ``match`` passes only when its runbook
is the one that handles the alert (other runbooks may match too, but must lose), and
``no_match`` passes when the runbook does not handle it. For an example its runbook handles,
everything that will be rendered at 3 a.m. is rendered now: the title, the dashboard URLs,
the escalation targets and every mitigation's params, which are then validated against the
action's params model and rated again for ``mode: auto``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from actions import ActionRegistry, Risk, default_registry
from bot.errors import TemplateError
from bot.intake.alert import Alert, AlertSource, AlertStatus, label_fingerprint, template_context
from bot.runbooks.mitigation_checks import params_problems
from bot.runbooks.promql import render_promql
from bot.runbooks.schema import ExpectOutcome, MitigationMode, Runbook, RunbookTest
from bot.runbooks.schema_errors import where
from bot.runbooks.snapshot import Catalog
from bot.runbooks.templates import render_params, render_template

# Examples render with a fixed start time, so a title that shows it is the same on every run.
EXAMPLE_STARTS_AT = datetime(2024, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class CaseResult:
    """The outcome of one example alert; ``number`` counts from 1 within its runbook.

    ``reason`` is one line for humans; ``problems`` lists each failure on its own.
    """

    runbook_id: str
    number: int
    passed: bool
    reason: str
    path: Path | None = None
    problems: tuple[str, ...] = ()

    def __str__(self) -> str:
        status = "PASS" if self.passed else "FAIL"
        return f"{status} {self.runbook_id} case {self.number}: {self.reason}"


def example_alert(case: RunbookTest) -> Alert:
    """The alert an example stands for, as intake would have built it."""
    labels = dict(case.alert.labels)
    return Alert(
        fingerprint=label_fingerprint(labels),
        status=AlertStatus.FIRING,
        labels=labels,
        annotations=dict(case.alert.annotations),
        starts_at=EXAMPLE_STARTS_AT,
        source=AlertSource.GENERIC,
    )


def run_tests(catalog: Catalog, registry: ActionRegistry | None = None) -> list[CaseResult]:
    """Every example of every runbook, in runbook id order."""
    registry = registry if registry is not None else default_registry()
    results: list[CaseResult] = []
    for runbook in catalog.runbooks.values():
        path = _path(catalog, runbook.id)
        for number, case in enumerate(runbook.tests, start=1):
            problems, reason = _run_case(catalog, registry, runbook, case)
            passed = not problems
            results.append(CaseResult(runbook.id, number, passed, reason, path, problems))
    return results


def _run_case(
    catalog: Catalog, registry: ActionRegistry, runbook: Runbook, case: RunbookTest
) -> tuple[tuple[str, ...], str]:
    labels = case.alert.labels
    winner = catalog.best(labels)
    wins = winner is not None and winner.id == runbook.id
    context = template_context(example_alert(case))
    failures: list[str] = []
    if case.expect is ExpectOutcome.MATCH and not wins:
        failures.append(_why_not(runbook, labels, winner))
    if case.expect is ExpectOutcome.NO_MATCH and wins:
        failures.append("expected no match, but this runbook handles the alert")
    if case.title is not None:
        try:
            title = render_template(runbook.title, context)
        except TemplateError as err:
            failures.append(f"title does not render: {err}")
        else:
            if title != case.title:
                failures.append(f"title: expected {case.title!r}, got {title!r}")
    if wins:
        failures.extend(_render_everything(registry, runbook, context))
    if failures:
        return tuple(failures), "; ".join(failures)
    if case.expect is ExpectOutcome.NO_MATCH:
        return (), f"not handled by this runbook ({winner.id} is)" if winner else "not matched"
    return (), "matched" + (", title ok" if case.title is not None else "")


def _why_not(runbook: Runbook, labels: dict[str, str], winner: Runbook | None) -> str:
    failed = [m for m in runbook.matchers if not m.matches(labels)]
    if failed:
        shown = ", ".join(
            f'{m} (the alert has {m.name}="{labels[m.name]}")'
            if m.name in labels
            else f"{m} (the alert has no {m.name})"
            for m in failed
        )
        reason = f"expected match, but {shown} did not match"
        return reason + (f"; {winner.id} handles it" if winner else "")
    assert winner is not None  # it matches, so some runbook handles the alert
    if winner.specificity > runbook.specificity:
        why = f"{winner.specificity} matchers to {runbook.specificity}"
    else:
        why = f"{winner.specificity} matchers each, and ties go to the lowest id"
    return f"expected match, but {winner.id} won ({why})"


def _render_everything(
    registry: ActionRegistry, runbook: Runbook, context: dict[str, object]
) -> list[str]:
    """What will be rendered when this alert fires (verify queries too), rendered now; one
    message per failure."""
    failures: list[str] = []
    for i, dashboard in enumerate(runbook.dashboards):
        _render(failures, f"dashboards[{i}].url", dashboard.url, context)
    for i, step in enumerate(runbook.escalation):
        _render(failures, f"escalation[{i}].notify", step.notify, context)
    for i, mitigation in enumerate(runbook.mitigations):
        for j, check in enumerate(mitigation.verify.checks if mitigation.verify else []):
            try:
                render_promql(check.query, context)
            except TemplateError as err:
                failures.append(f"mitigations[{i}].verify.checks[{j}].query does not render: {err}")
        base = ("mitigations", i, "params")
        params = _render(failures, where(base), mitigation.params, context)
        action = registry.get(mitigation.action)
        if params is None or action is None:
            continue
        problems = params_problems(action, params, base, skip_templates=False)
        failures.extend(f"after rendering, {message}" for _, message, _ in problems)
        if problems or mitigation.mode is not MitigationMode.AUTO:
            continue
        risk = action.risk(action.parse(params))
        if risk is not Risk.LOW:
            failures.append(
                f"mitigations[{i}] ({mitigation.id}) renders to a {risk.value}-risk "
                f"{action.name}, but `mode: auto` runs only low-risk actions; use `mode: approve`"
            )
    return failures


def _render(failures: list[str], what: str, value: Any, context: dict[str, object]) -> Any:
    try:
        return render_params(value, context)
    except TemplateError as err:
        failures.append(f"{what} does not render: {err}")
        return None


def _path(catalog: Catalog, runbook_id: str) -> Path | None:
    try:
        return catalog.path_of(runbook_id)
    except KeyError:
        return None
