"""The facts a postmortem is drafted from: the incident, its journal, its runbook, its controls.

Everything here is read, never inferred: a draft can only state what these models hold, so
every sentence in it traces to a timeline entry, a control change or the runbook.

Phase numbers with re-opens. All phases are measured from the *first* opening; acknowledge
and mitigate keep their first occurrence (a re-open does not reset them); resolve is the
*final* resolve, so the gaps while the incident was briefly resolved count towards it. The
episodes (each opening or re-opening to the resolve that followed) are listed separately, and
``open_seconds`` sums them: the time the incident was really open.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from actions.registry import ActionRegistry
from bot.changelog.log import SOURCE_CONTROL
from bot.changelog.ranking import DEFAULT_WINDOW
from bot.incidents.detail import load_incident_detail
from bot.incidents.phases import phase_durations
from bot.incidents.read_model import IncidentDetail, ScorecardOut, TimelineOut, panel_trend
from bot.incidents.timeline import TimelineKind
from bot.incidents.traces import TraceLinks
from bot.postmortem.models import (
    ChangeFact,
    ControlChangeFact,
    ControlFact,
    Detection,
    Episode,
    MitigationFact,
    Phase,
    PostmortemFacts,
    RunbookFacts,
    ScorecardRow,
    ServiceControls,
    TimelineLine,
    TraceLinkFact,
)
from bot.runbooks.catalog import LiveCatalog
from bot.runbooks.schema import Runbook
from bot.store import incidents as repo
from bot.store.database import Database
from bot.store.tables import StoredControlChange

MAX_TIMELINE_LINES = 120
"""A storm of thousands of alerts still gives a readable timeline: head and tail are kept."""

COLLAPSE_AT = 3
"""A run of this many same-kind alert (or reminder) entries becomes one line."""

_COLLAPSIBLE = {
    TimelineKind.ALERT_FIRING.value: ("alert fired", "alerts fired"),
    TimelineKind.ALERT_REFIRING.value: ("alert fired again", "alerts fired again"),
    TimelineKind.ALERT_RESOLVED.value: ("alert resolved", "alerts resolved"),
    "reminder": ("reminder", "reminders"),
}

AI_CONTROLS = ("model", "prompt_version", "retrieval_index", "autonomy", "human_review")
"""The per-service control keys of the flag convention, besides ``tools.<tool>.enabled``."""


async def collect_facts(
    db: Database,
    catalog: LiveCatalog,
    registry: ActionRegistry,
    incident_id: int,
    *,
    change_window: timedelta = DEFAULT_WINDOW,
    traces: TraceLinks | None = None,
    now: datetime | None = None,
) -> PostmortemFacts:
    """Read everything the draft may state. Raises ``NotFoundError`` for an unknown id."""
    detail = await load_incident_detail(
        db, catalog, registry, incident_id, change_window=change_window, traces=traces, now=now
    )
    async with db.sessions() as session:
        incident = await repo.get(session, incident_id)
        phases = phase_durations(incident)
        ends = {
            "detect": incident.opened_at,
            "acknowledge": incident.acknowledged_at,
            "mitigate": incident.mitigated_at,
            "resolve": incident.resolved_at,
        }
        starts = {"detect": incident.detected_at}
        phase_facts = [
            Phase(
                name=name,
                seconds=phases[name].total_seconds() if name in phases else None,
                start=starts.get(name, incident.opened_at),
                end=end,
            )
            for name, end in ends.items()
        ]
        mitigations = _mitigations(detail)
        end = incident.resolved_at or incident.updated_at
        services = _candidate_services(detail, mitigations)
        changes = list(
            await session.scalars(
                select(StoredControlChange)
                .where(StoredControlChange.at <= end)
                .where(StoredControlChange.key.in_(_fixed_keys(services)))
                .order_by(StoredControlChange.id)
            )
        )
        for service in services:
            changes.extend(
                await session.scalars(
                    select(StoredControlChange)
                    .where(StoredControlChange.at <= end)
                    .where(StoredControlChange.key.startswith(f"{service}.tools.", autoescape=True))
                    .order_by(StoredControlChange.id)
                )
            )
    runbook = catalog.current.runbooks.get(detail.runbook_id or "")
    path = _runbook_path(catalog, runbook)
    episodes = _episodes(detail.timeline, detail.opened_at, detail.resolved_at)
    timeline, omitted = _timeline(detail.timeline)
    controls = [_service_controls(s, changes, detail.opened_at, end) for s in services]
    return PostmortemFacts(
        incident_id=detail.id,
        title=detail.title,
        status=detail.status,
        severity=detail.severity,
        service=detail.service,
        group_labels=detail.group_labels,
        alert_count=detail.alert_count,
        opened_at=detail.opened_at,
        resolved_at=detail.resolved_at,
        resolved_by=detail.resolved_by,
        reopen_count=detail.reopen_count,
        detection=_detection(detail),
        phases=phase_facts,
        episodes=episodes,
        open_seconds=_open_seconds(episodes),
        timeline=timeline,
        timeline_omitted=omitted,
        mitigations=mitigations,
        services=[c for c in controls if c.controls or c.tools],
        services_without_history=[c.service for c in controls if not (c.controls or c.tools)],
        runbook=_runbook_facts(runbook) if runbook else None,
        runbook_path=str(path) if path else None,
        runbook_revision=detail.runbook_revision,
        runbook_url=detail.runbook_url,
        changes=[
            ChangeFact(
                kind=c.kind,
                version=c.version,
                previous=c.previous,
                by=c.by,
                link=c.link,
                note=c.note,
                at=c.at,
                minutes_before=c.minutes_before,
                likely_cause=c.likely_cause,
            )
            for c in detail.changes
            # Ballast's own control changes during the incident are its mitigations (below).
            if c.minutes_before > 0 or c.source != SOURCE_CONTROL
        ],
        scorecard=_scorecard(detail),
        traces=[TraceLinkFact(**t.model_dump()) for t in detail.traces],
    )


def _scorecard(detail: IncidentDetail) -> list[ScorecardRow]:
    """Before (the snapshot at open), during (after the last verification), after (resolve)."""
    snapshots = detail.scorecards

    def last(moment: str) -> ScorecardOut | None:
        return next((s for s in reversed(snapshots) if s.moment == moment), None)

    before = next((s for s in snapshots if s.moment == "open"), None)
    during, after = last("verification"), last("resolve")
    names = list(dict.fromkeys(p.name for s in snapshots for p in s.panels))
    rows = []
    for name in names:
        cells = [
            next((p for p in s.panels if p.name == name), None) if s else None
            for s in (before, during, after)
        ]
        known = [c for c in cells if c is not None]
        first, end = cells[0], cells[2] or cells[1]
        rows.append(
            ScorecardRow(
                name=name,
                good=known[0].good,
                before=cells[0].shown if cells[0] else None,
                during=cells[1].shown if cells[1] else None,
                after=cells[2].shown if cells[2] else None,
                trend=panel_trend(
                    first.value if first else None, end.value if end else None, known[0].good
                ),
            )
        )
    return rows


def _runbook_path(catalog: LiveCatalog, runbook: Runbook | None) -> Path | None:
    if runbook is None:
        return None
    try:
        return catalog.current.path_of(runbook.id)
    except KeyError:
        return None


def _runbook_facts(runbook: Runbook) -> RunbookFacts:
    return RunbookFacts(
        id=runbook.id,
        title=runbook.title,
        symptom=runbook.symptom,
        business_impact=runbook.business_impact,
        likely_causes=list(runbook.likely_causes),
        questions=list(runbook.postmortem.questions),
        reviewers=list(runbook.postmortem.reviewers),
        owners=list(runbook.owners),
        template=runbook.postmortem.template,
    )


def _detection(detail: IncidentDetail) -> Detection:
    """The first alert the journal recorded; the earliest-starting alert if none was."""
    first = next((e for e in detail.timeline if e.kind == TimelineKind.ALERT_FIRING.value), None)
    fingerprint = str(first.details.get("fingerprint")) if first else None
    alert = next((a for a in detail.alerts if a.fingerprint == fingerprint), None)
    if alert is None and detail.alerts:
        alert = min(detail.alerts, key=lambda a: a.starts_at)
    return Detection(
        alertname=alert.labels.get("alertname") if alert else None,
        fingerprint=alert.fingerprint if alert else None,
        signal_started_at=detail.detected_at,
        opened_at=detail.opened_at,
        acknowledged_at=detail.acknowledged_at,
        acknowledged_by=detail.acknowledged_by,
    )


def _episodes(
    timeline: Sequence[TimelineOut], opened_at: datetime, resolved_at: datetime | None
) -> list[Episode]:
    """Each opening or re-opening, to the resolve that closed it (None: still open)."""
    episodes: list[Episode] = []
    start: datetime | None = opened_at
    reopened = False
    for entry in timeline:
        if entry.kind == TimelineKind.RESOLVED.value and start is not None:
            episodes.append(Episode(opened_at=start, resolved_at=entry.at, reopened=reopened))
            start = None
        elif entry.kind == TimelineKind.REOPENED.value:
            start, reopened = entry.at, True
    if start is not None:
        episodes.append(Episode(opened_at=start, resolved_at=None, reopened=reopened))
    return episodes


def _open_seconds(episodes: Sequence[Episode]) -> float | None:
    if not episodes or any(e.resolved_at is None for e in episodes):
        return None
    return sum((e.resolved_at - e.opened_at).total_seconds() for e in episodes if e.resolved_at)


def _timeline(entries: Sequence[TimelineOut]) -> tuple[list[TimelineLine], int]:
    """Collapse runs of alert entries, then keep the head and tail of what is left."""
    lines: list[TimelineLine] = []
    index = 0
    while index < len(entries):
        entry = entries[index]
        end = index
        if entry.kind in _COLLAPSIBLE:
            while end + 1 < len(entries) and entries[end + 1].kind == entry.kind:
                end += 1
        run = entries[index : end + 1]
        if len(run) >= COLLAPSE_AT:
            actors = sorted({e.actor for e in run})
            lines.append(
                TimelineLine(
                    at=run[0].at,
                    until=run[-1].at,
                    actor=", ".join(actors),
                    kind=entry.kind,
                    text=f"{len(run)} {_COLLAPSIBLE[entry.kind][1]}",
                    count=len(run),
                )
            )
        else:
            lines.extend(
                TimelineLine(
                    at=e.at, until=None, actor=e.actor, kind=e.kind, text=e.summary, count=1
                )
                for e in run
            )
        index = end + 1
    if len(lines) <= MAX_TIMELINE_LINES:
        return lines, 0
    half = MAX_TIMELINE_LINES // 2
    omitted = sum(line.count for line in lines[half:-half])
    return [*lines[:half], *lines[-half:]], omitted


def _mitigations(detail: IncidentDetail) -> list[MitigationFact]:
    """Every mitigation the journal mentions, in the order it first appears."""
    titles = {m.id: m.title for m in detail.mitigations}
    by_id: dict[str, list[TimelineOut]] = {}
    for entry in detail.timeline:
        mitigation_id = entry.details.get("mitigation_id")
        if entry.kind.startswith("mitigation_") and isinstance(mitigation_id, str):
            by_id.setdefault(mitigation_id, []).append(entry)
    alerts = [
        e
        for e in detail.timeline
        if e.kind in (TimelineKind.ALERT_RESOLVED.value, TimelineKind.ALERT_REFIRING.value)
    ]
    return [
        _mitigation(mitigation_id, titles.get(mitigation_id, mitigation_id), entries, alerts)
        for mitigation_id, entries in by_id.items()
    ]


def _mitigation(
    mitigation_id: str,
    title: str,
    entries: Sequence[TimelineOut],
    alerts: Sequence[TimelineOut],
) -> MitigationFact:
    def last(kind: TimelineKind) -> TimelineOut | None:
        return next((e for e in reversed(entries) if e.kind == kind.value), None)

    requested = next(
        (e for e in entries if e.kind == TimelineKind.MITIGATION_REQUESTED.value), None
    )
    applied = last(TimelineKind.MITIGATION_APPLIED)
    undone = last(TimelineKind.MITIGATION_UNDONE)
    manual = last(TimelineKind.MITIGATION_DONE_MANUALLY)
    approvals: list[str] = []
    if applied is not None:
        approvals = [str(a) for a in applied.details.get("approvals", [])]
    else:
        for entry in entries:
            if (
                entry.kind == TimelineKind.MITIGATION_APPROVED.value
                and entry.actor not in approvals
            ):
                approvals.append(entry.actor)
    requested_by = None
    if applied is not None:
        requested_by = applied.details.get("requested_by")
    elif requested is not None:
        requested_by = requested.actor
    after = [a for a in alerts if applied is not None and a.at >= applied.at]
    resolved = [a for a in after if a.kind == TimelineKind.ALERT_RESOLVED.value]
    details = applied.details if applied else {}
    return MitigationFact(
        id=mitigation_id,
        title=title,
        action=details.get("action") or (requested.details.get("action") if requested else None),
        risk=next((str(e.details["risk"]) for e in entries if e.details.get("risk")), None),
        requested_by=str(requested_by) if requested_by else None,
        requested_at=requested.at if requested else (applied.at if applied else None),
        approvals=approvals,
        applied_at=applied.at if applied else None,
        applied_by=applied.actor if applied else None,
        applied_summary=applied.summary if applied else None,
        change=(
            ControlChangeFact(
                key=details["key"], before=details.get("before"), after=details.get("after")
            )
            if details.get("key")
            else None
        ),
        undone_at=undone.at if undone else None,
        undone_by=undone.actor if undone else None,
        undo_summary=undone.summary if undone else None,
        failures=[e.summary for e in entries if e.kind == TimelineKind.MITIGATION_FAILED.value],
        refusals=[e.summary for e in entries if e.kind == TimelineKind.MITIGATION_REFUSED.value],
        done_manually_by=manual.actor if manual else None,
        dry_runs=sum(1 for e in entries if e.kind == TimelineKind.MITIGATION_DRY_RUN.value),
        resolved_after=len(resolved),
        first_resolved_after=resolved[0].at if resolved else None,
        refired_after=len(after) - len(resolved),
    )


def _candidate_services(detail: IncidentDetail, mitigations: Iterable[MitigationFact]) -> list[str]:
    """Services whose controls matter: those the mitigations touched, then the alert's."""
    found: list[str] = []
    keys = [m.change.key for m in mitigations if m.change is not None]
    labels = [detail.group_labels.get("service")] + [a.labels.get("service") for a in detail.alerts]
    for service in [k.split(".", 1)[0] for k in keys] + labels + [detail.service]:
        if service and service not in found:
            found.append(service)
    return found


def _fixed_keys(services: Iterable[str]) -> list[str]:
    return [f"{service}.{name}" for service in services for name in AI_CONTROLS]


def _service_controls(
    service: str, changes: Sequence[StoredControlChange], opened: datetime, end: datetime
) -> ServiceControls:
    prefix = f"{service}."
    mine = sorted((c for c in changes if c.key.startswith(prefix)), key=lambda c: c.id)
    controls = []
    for name in AI_CONTROLS:
        key = prefix + name
        history = [c for c in mine if c.key == key]
        if history:
            controls.append(_control(key, name, history, opened, end))
    tools = []
    tool_keys = sorted(
        {c.key for c in mine if c.key.startswith(prefix + "tools.") and c.key.endswith(".enabled")}
    )
    for key in tool_keys:
        name = key[len(prefix + "tools.") : -len(".enabled")]
        tools.append(_control(key, name, [c for c in mine if c.key == key], opened, end))
    return ServiceControls(service=service, controls=controls, tools=tools)


def _control(
    key: str,
    name: str,
    history: Sequence[StoredControlChange],
    opened: datetime,
    end: datetime,
) -> ControlFact:
    """The value just before ``opened`` and at ``end``, from ``history`` (oldest first)."""

    def value_at(moment: datetime, *, inclusive: bool) -> Any:
        earlier = [c for c in history if c.at < moment or (inclusive and c.at == moment)]
        return earlier[-1].after if earlier else history[0].before

    return ControlFact(
        key=key,
        name=name,
        at_open=value_at(opened, inclusive=False),
        at_end=value_at(end, inclusive=True),
        changes_during=sum(1 for c in history if opened <= c.at <= end),
    )
