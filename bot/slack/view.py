"""What the incident message shows, gathered from the incident and its runbook.

:func:`build_view` does everything that needs the domain (templates, policy, which buttons a
state allows, stale-click versions) so :mod:`bot.slack.incident_message` only lays it out. Text
fields hold plain text exactly as written (the renderer escapes it); ``owners`` and the actor
fields hold Slack markup already (``<@U123>``, ``<!subteam^S1|@team>``), built only from
validated ids or escaped names (:mod:`bot.slack.text`), so an alert annotation can never
smuggle in an ``<!channel>``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from actions.base import Risk
from bot.errors import TemplateError
from bot.execution.policy import approvals_needed
from bot.execution.results import ExecutionState
from bot.incidents.lifecycle import IncidentStatus
from bot.incidents.read_model import (
    NOT_RUN,
    AlertOut,
    ChangeOut,
    IncidentDetail,
    IncidentSummary,
    MitigationOut,
    panel_trend,
)
from bot.intake.alert import AlertStatus, template_context
from bot.runbooks.schema import MitigationMode, Runbook
from bot.runbooks.templates import is_template, render_template
from bot.slack.ids import ActionId
from bot.slack.text import mention

MAX_ALERT_EXAMPLES = 5
MAX_KEY_LABELS = 4
# Shown everywhere else in the message, or the same for every alert of an incident.
_CONTEXT_LABELS = frozenset({"alertname", "service", "env", "severity"})


@dataclass(frozen=True, slots=True)
class DashboardLink:
    """A dashboard; ``url`` is None when its template could not be rendered (see ``note``)."""

    title: str
    url: str | None
    note: str | None = None


@dataclass(frozen=True, slots=True)
class AlertExample:
    alertname: str
    firing: bool
    labels: tuple[tuple[str, str], ...]  # the labels that tell this alert from the others
    summary: str | None


@dataclass(frozen=True, slots=True)
class AlertCounts:
    firing: int
    total: int
    examples: tuple[AlertExample, ...]

    @property
    def more(self) -> int:
        """Alerts counted but not shown as examples."""
        return max(0, self.total - len(self.examples))


@dataclass(frozen=True, slots=True)
class MitigationView:
    id: str
    title: str
    action: str
    mode: str  # a MitigationMode value
    risk: Risk | None  # None when the preview failed: the risk is unknown
    preview: str | None
    reversible: bool | None
    state: str  # NOT_RUN or an ExecutionState value
    requested_by: str | None  # Slack markup
    approvals: tuple[str, ...]  # Slack markup, in order
    approvals_needed: int
    before: str | None  # JSON-ish rendering of the value it replaced
    after: str | None
    error: str | None
    undone_by: str | None  # Slack markup
    actions: tuple[ActionId, ...]  # the buttons this state allows, in display order
    verdict: str | None  # of its latest run's verification
    verified: str | None  # plain text: the values before → after
    version: str  # changes whenever what the buttons act on changes
    # The exact change an approval or a click would make (plain text): key, before, after,
    # and where a `to: previous` target was found; or why that cannot be told now.
    plan: tuple[str, str, str] | None = None
    plan_why: str | None = None
    plan_error: str | None = None

    @property
    def changed_value(self) -> bool:
        return self.before is not None or self.after is not None


@dataclass(frozen=True, slots=True)
class IncidentView:
    """Everything the incident message shows; built by :func:`build_view`."""

    incident_id: int
    title: str
    severity: str
    service: str | None
    status: str
    runbook_id: str | None
    opened_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None  # Slack markup
    resolved_at: datetime | None
    resolved_by: str | None  # Slack markup
    reopen_count: int
    symptom: str | None  # None when the runbook is gone from the catalog
    business_impact: str | None
    dashboards: tuple[DashboardLink, ...]
    traces: tuple[DashboardLink, ...]  # trace searches (ballast.yaml traces:)
    owners: tuple[str, ...]  # Slack markup
    likely_causes: tuple[str, ...]
    alerts: AlertCounts
    mitigations: tuple[MitigationView, ...]
    actions: tuple[ActionId, ...]  # incident-level buttons (acknowledge, resolve)
    version: str
    url: str | None  # this incident in Ballast's API, when a base URL is configured
    changes: tuple[ChangeOut, ...] = ()  # recent AI changes, likely causes first
    scorecard: tuple[str, ...] = ()  # plain text: each panel now, and since the incident opened
    runbook_revision: str | None = None  # the git commit it was matched under
    runbook_url: str | None = None  # the runbook file at that commit (runbooks.web_url)

    @property
    def is_open(self) -> bool:
        return self.status != IncidentStatus.RESOLVED

    def mitigation(self, mitigation_id: str) -> MitigationView | None:
        return next((m for m in self.mitigations if m.id == mitigation_id), None)


def build_view(
    detail: IncidentDetail,
    runbook: Runbook | None,
    *,
    base_url: str | None = None,
    group_ids: Mapping[str, str] | None = None,
    max_alert_examples: int = MAX_ALERT_EXAMPLES,
) -> IncidentView:
    """Gather the message's content; never raises on bad runbook templates or odd alerts.

    ``group_ids`` maps user-group handles (``@ai-oncall``) to Slack ids (``S0123``) so owners
    are real mentions; handles without an id are shown as plain text.
    """
    groups = group_ids or {}
    is_open = detail.status != IncidentStatus.RESOLVED
    return IncidentView(
        incident_id=detail.id,
        title=detail.title,
        severity=detail.severity,
        service=detail.service,
        status=detail.status,
        runbook_id=detail.runbook_id,
        runbook_revision=detail.runbook_revision,
        runbook_url=detail.runbook_url,
        opened_at=detail.opened_at,
        acknowledged_at=detail.acknowledged_at,
        acknowledged_by=_actor(detail.acknowledged_by, groups),
        resolved_at=detail.resolved_at,
        resolved_by=_actor(detail.resolved_by, groups),
        reopen_count=detail.reopen_count,
        symptom=runbook.symptom if runbook else None,
        business_impact=runbook.business_impact if runbook else None,
        dashboards=_dashboards(runbook, detail.alerts),
        traces=tuple(DashboardLink(t.title, t.url, t.note) for t in detail.traces),
        owners=tuple(mention(owner, groups) for owner in runbook.owners) if runbook else (),
        likely_causes=tuple(runbook.likely_causes) if runbook else (),
        alerts=_alert_counts(detail, max_alert_examples),
        mitigations=tuple(_mitigation(m, groups, is_open) for m in detail.mitigations),
        actions=_incident_actions(detail.status),
        version=incident_version(detail),
        url=f"{base_url.rstrip('/')}/api/v1/incidents/{detail.id}" if base_url else None,
        changes=tuple(detail.changes),
        scorecard=_scorecard(detail),
    )


def _scorecard(detail: IncidentDetail) -> tuple[str, ...]:
    """The latest snapshot, each panel with its value at opening and which way it moved."""
    if not detail.scorecards:
        return ()
    first = next((s for s in detail.scorecards if s.moment == "open"), detail.scorecards[0])
    latest = detail.scorecards[-1]
    opened = {panel.name: panel for panel in first.panels}
    lines = []
    for panel in latest.panels:
        was = opened.get(panel.name)
        if latest is first or was is None:
            lines.append(f"{panel.name} {panel.shown}")
            continue
        trend = panel_trend(was.value, panel.value, panel.good)
        lines.append(f"{panel.name} {was.shown} → {panel.shown}" + (f" ({trend})" if trend else ""))
    return tuple(lines)


def mitigation_version(mitigation: MitigationOut) -> str:
    """A digest of everything a mitigation button acts on; a click with another is stale.

    Covers the execution generation too: a re-run after an undo gets a new ``applied_at``.
    """
    return _digest(
        mitigation.id,
        mitigation.state,
        mitigation.requested_by,
        mitigation.approvals,
        mitigation.applied_at,
        mitigation.undone_at,
        mitigation.error,
        # A click approves the change the message showed: another one now makes it stale.
        mitigation.plan.get("text") if mitigation.plan else None,
        mitigation.plan_error,
    )


def incident_version(incident: IncidentSummary) -> str:
    """A digest of the incident state Acknowledge and Resolve act on."""
    return _digest(
        incident.id,
        incident.status,
        incident.reopen_count,
        incident.acknowledged_at,
        incident.resolved_at,
    )


def _digest(*parts: object) -> str:
    text = json.dumps(parts, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _actor(who: str | None, groups: Mapping[str, str]) -> str | None:
    return mention(who, groups) if who else None


def _incident_actions(status: str) -> tuple[ActionId, ...]:
    if status == IncidentStatus.RESOLVED:
        return ()
    if status == IncidentStatus.TRIGGERED:
        return (ActionId.ACK, ActionId.RESOLVE)
    return (ActionId.RESOLVE,)


def _mitigation(m: MitigationOut, groups: Mapping[str, str], is_open: bool) -> MitigationView:
    risk = _risk(m.risk)
    try:
        mode = MitigationMode(m.mode)
    except ValueError:
        mode = MitigationMode.APPROVE
    return MitigationView(
        id=m.id,
        title=m.title,
        action=m.action,
        mode=m.mode,
        risk=risk,
        preview=m.preview,
        reversible=m.reversible,
        state=m.state,
        requested_by=_actor(m.requested_by, groups),
        approvals=tuple(mention(a, groups) for a in m.approvals),
        # An unknown risk is treated as high: two people look before it runs.
        approvals_needed=approvals_needed(mode, risk or Risk.HIGH),
        before=_value(m.before),
        after=_value(m.after),
        error=m.error,
        undone_by=_actor(m.undone_by, groups),
        actions=_mitigation_actions(m.state, mode, m.reversible, is_open),
        verdict=m.verdict,
        verified=m.verified,
        version=mitigation_version(m),
        plan=_plan(m.plan),
        plan_why=(m.plan.get("resolved") or None) if m.plan else None,
        plan_error=m.plan_error,
    )


def _plan(plan: dict[str, Any] | None) -> tuple[str, str, str] | None:
    if not plan:
        return None
    return (
        str(plan.get("key")),
        _value(plan.get("before")) or "unset",
        _value(plan.get("after")) or "unset",
    )


def _mitigation_actions(
    state: str, mode: MitigationMode, reversible: bool | None, is_open: bool
) -> tuple[ActionId, ...]:
    """The buttons of one mitigation row: what this state lets someone do next.

    A resolved incident keeps only Undo: lifting a mitigation is often the last step.
    """
    if state == ExecutionState.APPLIED and reversible:
        return (ActionId.UNDO,)
    if not is_open:
        return ()
    if state in (NOT_RUN, ExecutionState.FAILED):
        first = ActionId.MARK_DONE if mode is MitigationMode.MANUAL else ActionId.RUN
        return (first, ActionId.SKIP)
    if state == ExecutionState.AWAITING_APPROVAL:
        return (ActionId.APPROVE, ActionId.SKIP)
    return ()  # running, undoing, undone, done by hand, or a state this code does not know


def _risk(value: str | None) -> Risk | None:
    try:
        return Risk(value) if value else None
    except ValueError:
        return None


def _value(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str, sort_keys=True)


def _dashboards(runbook: Runbook | None, alerts: Sequence[AlertOut]) -> tuple[DashboardLink, ...]:
    if runbook is None:
        return ()
    context = template_context(alerts[0]) if alerts else None
    links = []
    for dashboard in runbook.dashboards:
        if not is_template(dashboard.url):
            links.append(DashboardLink(dashboard.title, dashboard.url))
        elif context is None:
            note = "no alert to fill in the link from"
            links.append(DashboardLink(dashboard.title, None, note))
        else:
            try:
                links.append(
                    DashboardLink(dashboard.title, render_template(dashboard.url, context))
                )
            except TemplateError as err:
                links.append(DashboardLink(dashboard.title, None, f"link not rendered: {err}"))
    return tuple(links)


# Alerts read to render an incident's message (load_incident_detail's ``alert_limit``): its
# first, then firing ones. The counts are the incident's; the examples and the labels they
# share are of these. A storm incident holds tens of thousands, and every batch of its storm
# re-rendered the message from all of them.
MESSAGE_ALERT_SAMPLE = 200


def _alert_counts(detail: IncidentDetail, limit: int) -> AlertCounts:
    """Counts from the incident (all alerts) and a bounded sample, firing ones first."""
    alerts = detail.alerts
    firing_first = sorted(alerts, key=lambda a: a.status != AlertStatus.FIRING)[: max(0, limit)]
    shared = _shared_labels(alerts)
    return AlertCounts(
        firing=detail.firing_count,
        total=max(detail.alert_count, len(alerts)),
        examples=tuple(_example(alert, shared) for alert in firing_first),
    )


def _shared_labels(alerts: Sequence[AlertOut]) -> frozenset[tuple[str, str]]:
    """Label pairs every alert carries: they say nothing about which alert this is."""
    if len(alerts) < 2:
        return frozenset()
    common = set(alerts[0].labels.items())
    for alert in alerts[1:]:
        common.intersection_update(alert.labels.items())
    return frozenset(common)


def _example(alert: AlertOut, shared: frozenset[tuple[str, str]]) -> AlertExample:
    labels = tuple(
        (name, value)
        for name, value in sorted(alert.labels.items())
        if name not in _CONTEXT_LABELS and (name, value) not in shared
    )[:MAX_KEY_LABELS]
    summary = alert.annotations.get("summary") or alert.annotations.get("description")
    return AlertExample(
        alertname=alert.labels.get("alertname", "alert"),
        firing=alert.status == AlertStatus.FIRING,
        labels=labels,
        summary=summary or None,
    )
