"""``ballast runbooks explain``: which runbooks an alert matches, and why the others do not.

Structured results only; the CLI renders them. A runbook is shown when it matches, or when
it is plainly meant for this kind of alert (one of its ``alertname`` matchers matches), so
the answer to "why did my runbook not fire?" is a single failing matcher with the value the
alert actually carried. This is a linear scan over the catalog, fine for a command.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from bot.intake import AlertSource, detect_source, parse_payload
from bot.intake.alert import Alert
from bot.matching.matcher import MatchOp
from bot.runbooks.snapshot import Catalog, precedence


@dataclass(frozen=True, slots=True)
class MatcherCheck:
    """One matcher of a runbook against the alert; ``actual`` is None if the label is absent."""

    matcher: str
    label: str
    actual: str | None
    matched: bool


@dataclass(frozen=True, slots=True)
class RunbookCheck:
    runbook_id: str
    specificity: int
    matched: bool
    winner: bool
    matchers: tuple[MatcherCheck, ...]


@dataclass(frozen=True, slots=True)
class AlertExplanation:
    """For one alert: the relevant runbooks, the winner first, then other matches, then misses."""

    labels: Mapping[str, str]
    winner: str | None
    runbooks: tuple[RunbookCheck, ...]


@dataclass(frozen=True, slots=True)
class PayloadExplanation:
    source: AlertSource
    alerts: tuple[AlertExplanation, ...]


def explain_labels(catalog: Catalog, labels: Mapping[str, str]) -> AlertExplanation:
    """Every matcher of every relevant runbook against one label set."""
    alertname = labels.get("alertname", "")
    winner = catalog.best(labels)
    checks: list[RunbookCheck] = []
    for runbook in sorted(catalog.runbooks.values(), key=precedence):
        matchers = tuple(
            MatcherCheck(str(m), m.name, labels.get(m.name), m.matches(labels))
            for m in runbook.matchers
        )
        matched = all(check.matched for check in matchers)
        same_kind = any(
            m.name == "alertname" and m.op in (MatchOp.EQUAL, MatchOp.REGEX) and m.matches(labels)
            for m in runbook.matchers
        )
        if matched or (same_kind and alertname):
            is_winner = winner is not None and winner.id == runbook.id
            checks.append(
                RunbookCheck(runbook.id, runbook.specificity, matched, is_winner, matchers)
            )
    checks.sort(key=lambda check: (not check.winner, not check.matched))
    return AlertExplanation(dict(labels), winner.id if winner else None, tuple(checks))


def explain_alerts(catalog: Catalog, alerts: list[Alert]) -> tuple[AlertExplanation, ...]:
    return tuple(explain_labels(catalog, alert.labels) for alert in alerts)


def explain_payload(
    catalog: Catalog, data: object, source: AlertSource | None = None
) -> PayloadExplanation:
    """Parse a webhook body as intake would (detecting its source unless given) and explain it.

    Raises :class:`~bot.errors.PayloadError` when the body is not what the source sends.
    """
    source = source if source is not None else detect_source(data)
    batch = parse_payload(source, data)
    return PayloadExplanation(source, explain_alerts(catalog, batch.alerts))
