"""What a runbook change would do to real traffic: replay alerts through two catalogs.

Each distinct label set is matched against OLD and NEW exactly as the engine matches it (best
runbook by precedence, else triage). The report, Markdown fit for a pull-request comment,
lists alerts whose runbook changes, new matches (triage before), lost matches (newly
untriaged alerts), and, for alerts that keep their runbook, a changed first mitigation (id,
action or rendered params), policy (its mode, or the runbook's owners) or risk.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from actions import ActionRegistry, default_registry
from bot.errors import TemplateError
from bot.intake.alert import Alert, AlertSource, AlertStatus, label_fingerprint, template_context
from bot.runbooks.schema import Runbook
from bot.runbooks.snapshot import Catalog
from bot.runbooks.templates import render_params

TRIAGE = "(triage: no runbook)"
MAX_ROWS = 50  # per section; a PR comment stays readable


@dataclass(frozen=True, slots=True)
class FirstMove:
    """What happens first under a runbook: its first mitigation, its policy and risk."""

    mitigation: str | None
    action: str | None
    params: str | None  # rendered for this alert, as canonical JSON
    mode: str | None
    risk: str | None
    owners: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Change:
    labels: tuple[tuple[str, str], ...]
    count: int
    old: str | None  # runbook id, None for triage
    new: str | None
    details: tuple[str, ...] = ()

    @property
    def alert(self) -> str:
        return "{" + ", ".join(f'{k}="{v}"' for k, v in self.labels) + "}"


@dataclass(slots=True)
class RoutingDiff:
    alerts: int = 0  # alerts replayed
    distinct: int = 0  # distinct label sets
    moved: list[Change] = field(default_factory=list)  # runbook A → runbook B
    new_matches: list[Change] = field(default_factory=list)  # triage → runbook
    lost_matches: list[Change] = field(default_factory=list)  # runbook → triage
    handling: list[Change] = field(default_factory=list)  # same runbook, first move differs

    @property
    def changed(self) -> bool:
        return bool(self.moved or self.new_matches or self.lost_matches or self.handling)


def diff_routing(
    old: Catalog,
    new: Catalog,
    alerts: Iterable[Mapping[str, Any]],
    registry: ActionRegistry | None = None,
) -> RoutingDiff:
    """Replay every alert (a mapping with ``labels``) through both catalogs."""
    registry = registry if registry is not None else default_registry()
    counts: dict[tuple[tuple[str, str], ...], int] = {}
    result = RoutingDiff()
    for alert in alerts:
        labels = alert.get("labels") if isinstance(alert, Mapping) else None
        if not isinstance(labels, Mapping):
            continue
        key = tuple(sorted((str(k), str(v)) for k, v in labels.items()))
        counts[key] = counts.get(key, 0) + 1
        result.alerts += 1
    result.distinct = len(counts)
    for key, count in sorted(counts.items()):
        labels = dict(key)
        before, after = old.best(labels), new.best(labels)
        old_id = before.id if before else None
        new_id = after.id if after else None
        change = Change(key, count, old_id, new_id)
        if before is None and after is None:
            continue
        if before is None:
            result.new_matches.append(change)
        elif after is None:
            result.lost_matches.append(change)
        elif old_id != new_id:
            result.moved.append(change)
        else:
            details = _handling_changes(
                _first_move(before, labels, registry), _first_move(after, labels, registry)
            )
            if details:
                result.handling.append(Change(key, count, old_id, new_id, details))
    return result


def _first_move(runbook: Runbook, labels: dict[str, str], registry: ActionRegistry) -> FirstMove:
    owners = tuple(runbook.owners)
    if not runbook.mitigations:
        return FirstMove(None, None, None, None, None, owners)
    first = runbook.mitigations[0]
    alert = Alert(
        fingerprint=label_fingerprint(labels),
        status=AlertStatus.FIRING,
        labels=labels,
        annotations={},
        starts_at=datetime(2026, 1, 1, tzinfo=UTC),
        source=AlertSource.GENERIC,
    )
    action = registry.get(first.action)
    params: str | None = None
    risk: str | None = None
    try:
        rendered = render_params(
            first.params, template_context(alert), action.finalize_for if action else None
        )
        params = json.dumps(rendered, sort_keys=True)
        if action is not None:
            risk = action.risk(action.parse(rendered)).value
    except (TemplateError, ValidationError) as err:
        params = params or f"(does not render: {err})"
    return FirstMove(first.id, first.action, params, first.mode.value, risk, owners)


def _handling_changes(before: FirstMove, after: FirstMove) -> tuple[str, ...]:
    details = []
    if (before.mitigation, before.action) != (after.mitigation, after.action):
        details.append(
            f"first mitigation {_pair(before.mitigation, before.action)} → "
            f"{_pair(after.mitigation, after.action)}"
        )
    elif before.params != after.params:
        details.append(f"first mitigation params {before.params} → {after.params}")
    if before.mode != after.mode:
        details.append(f"policy: mode {before.mode or '-'} → {after.mode or '-'}")
    if before.owners != after.owners:
        details.append(
            f"policy: owners {', '.join(before.owners) or '-'} → {', '.join(after.owners) or '-'}"
        )
    if before.risk != after.risk:
        details.append(f"risk {before.risk or '-'} → {after.risk or '-'}")
    return tuple(details)


def _pair(mitigation: str | None, action: str | None) -> str:
    return f"`{mitigation}` ({action})" if mitigation else "none"


def render_markdown(diff: RoutingDiff, old_name: str, new_name: str) -> str:
    """The report as Markdown for a pull-request comment."""
    lines = [f"### Runbook routing diff: `{old_name}` → `{new_name}`", ""]
    lines.append(
        f"Replayed {diff.alerts} alerts ({diff.distinct} distinct label sets) through both "
        "catalogs."
    )
    lines.append("")
    if not diff.changed:
        lines.append("No alert changes runbook, match or first move.")
        return "\n".join(lines) + "\n"
    sections = (
        ("Alerts whose runbook changes", diff.moved),
        ("New matches (were untriaged)", diff.new_matches),
        ("Lost matches: newly untriaged alerts", diff.lost_matches),
        ("Same runbook, changed first mitigation, policy or risk", diff.handling),
    )
    for title, changes in sections:
        if not changes:
            continue
        lines += [f"#### {title} ({len(changes)})", "", "| alerts | labels | before | after |"]
        lines.append("| ---: | --- | --- | --- |")
        for change in changes[:MAX_ROWS]:
            after = _cell(change.new or TRIAGE)
            if change.details:
                after = "<br>".join(_cell(d) for d in change.details)
            lines.append(
                f"| {change.count} | `{_cell(change.alert)}` | {_cell(change.old or TRIAGE)} "
                f"| {after} |"
            )
        if len(changes) > MAX_ROWS:
            lines.append(f"| | … and {len(changes) - MAX_ROWS} more | | |")
        lines.append("")
    return "\n".join(lines)


def _cell(text: str) -> str:
    """A table cell: no pipes or newlines from label values."""
    return text.replace("|", "\\|").replace("\n", " ").replace("`", "'")
