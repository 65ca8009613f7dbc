"""An incident with everything about it, as the API, Slack and the CLI show it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from actions.errors import ActionError
from actions.registry import ActionRegistry
from bot.changelog.kinds import kinds_named
from bot.changelog.log import changes_of_service, live_versions
from bot.changelog.ranking import DEFAULT_WINDOW, rank, relevant
from bot.incidents.lifecycle import IncidentStatus
from bot.incidents.plan import PlannedMitigation, plan_mitigations
from bot.incidents.read_model import (
    AWAITING_APPROVAL,
    FAILED,
    NOT_RUN,
    UNDONE,
    AlertOut,
    ChangeOut,
    IncidentDetail,
    IncidentSummary,
    MitigationOut,
    ScorecardOut,
    TimelineOut,
    VerificationOut,
)
from bot.incidents.timeline import OTHER_KINDS, PER_ALERT_KINDS, TimelineKind
from bot.incidents.traces import ExemplarTrace, TraceLinks
from bot.intake.alert import template_context
from bot.runbooks.catalog import LiveCatalog
from bot.runbooks.schema import MitigationMode, Runbook
from bot.store import executions
from bot.store import incidents as repo
from bot.store.database import Database
from bot.store.tables import Execution, Incident, IncidentAlert, TimelineEntry

# States after which a click or a run starts a new execution: it would plan afresh.
_RUNNABLE = frozenset({NOT_RUN, UNDONE, FAILED})
PLAN_BUDGET = 2.0
"""Seconds all of one incident's plans may take together. Planning reads the control plane
(flagd's file, Unleash's API); a slow or unreachable one must not hold up the incident's views
(Slack message, API, console), which then say the plan could not be read in time."""


SUMMARY_TIMELINE_KINDS = frozenset(
    {TimelineKind.MITIGATION_VERIFIED, TimelineKind.SCORECARD, TimelineKind.EXEMPLARS}
)
"""The timeline entries the detail's verdicts, scorecards and exemplar traces are read from:
all a message of the incident needs of its timeline (``timeline_kinds``)."""


Planner = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any] | None]]
"""The exact control change running an action with params would make now (a
``ControlPlan.as_dict``; None: not a control change). Raises ``ActionError`` when it cannot
tell (no earlier value recorded, the control plane cannot be read)."""


async def bounded_alerts(
    session: AsyncSession, incident: Incident, limit: int | None
) -> tuple[Sequence[IncidentAlert], int]:
    """The incident's alerts, or at most ``limit`` of them (the first, then firing ones:
    :func:`bot.store.incidents.alerts_sample`); and how many it left out."""
    if limit is None:
        return await repo.alerts_of(session, incident.id), 0
    alerts = await repo.alerts_sample(session, incident.id, limit)
    return alerts, max(0, incident.alert_count - len(alerts))


async def bounded_timeline(
    session: AsyncSession,
    incident_id: int,
    alert_entries_limit: int | None,
    *,
    kinds: Iterable[TimelineKind] | None = None,
) -> tuple[Sequence[TimelineEntry], int]:
    """The incident's timeline in order (of ``kinds`` only, if given), with only the newest
    ``alert_entries_limit`` of the entries each alert leaves (None: all of them); and how many
    of those it left out."""
    if alert_entries_limit is None:
        return await repo.timeline_of(session, incident_id, kinds=kinds), 0
    wanted = set(TimelineKind if kinds is None else kinds)
    others = await repo.timeline_of(session, incident_id, kinds=wanted & OTHER_KINDS)
    newest, total = await repo.newest_of_kinds(
        session, incident_id, wanted & PER_ALERT_KINDS, alert_entries_limit
    )
    return sorted([*others, *newest], key=lambda entry: entry.id), total - len(newest)


async def load_incident_detail(
    db: Database,
    catalog: LiveCatalog,
    registry: ActionRegistry,
    incident_id: int,
    *,
    change_window: timedelta = DEFAULT_WINDOW,
    traces: TraceLinks | None = None,
    now: datetime | None = None,
    planner: Planner | None = None,
    alert_limit: int | None = None,
    timeline_kinds: Iterable[TimelineKind] | None = None,
    alert_entries_limit: int | None = None,
) -> IncidentDetail:
    """Raises ``NotFoundError`` for an unknown id. ``change_window``: how long before the
    first alert the change log is searched (``changes.window`` in ballast.yaml). ``traces``
    fills in the trace search links (``now`` ends an open incident's time range).
    ``planner``: fills in, for the open incident's mitigations a click would run now, the exact
    change it would make (a requested one shows the change stored with the request).
    ``alert_limit``: read at most this many alerts (:func:`bot.store.incidents.alerts_sample`;
    a message of a storm incident), not all of them; the counts stay the incident's.
    ``timeline_kinds``: read only the timeline entries of these kinds (a message shows its
    verdicts, scorecards and exemplars, not the entry each alert left).
    ``alert_entries_limit``: of the entries each alert leaves, only the newest this many (a
    page of a storm incident); the entries of other kinds are all read. What either limit
    left out is counted in ``alerts_omitted`` and ``timeline_omitted``."""
    async with db.sessions() as session:
        incident = await repo.get(session, incident_id)
        alerts, alerts_omitted = await bounded_alerts(session, incident, alert_limit)
        # The mitigations are planned from the first alert, listed or not (alert_limit 0);
        # an incident with no alerts (declared by hand) needs no read for it.
        first = alerts[0] if alerts else None
        if first is None and alerts_omitted:
            first = await repo.first_alert_of(session, incident.id)
        timeline, timeline_omitted = await bounded_timeline(
            session, incident_id, alert_entries_limit, kinds=timeline_kinds
        )
        runs = {
            row.mitigation_id: row for row in await executions.of_incident(session, incident_id)
        }
        runbook = catalog.current.runbooks.get(incident.runbook_id) if incident.runbook_id else None
        changes = await load_changes(session, incident, runbook, change_window)
        versions = (
            await live_versions(session, incident.service, incident.resolved_at or _now(now))
            if traces and incident.service
            else {}
        )
    summary = IncidentSummary.model_validate(incident)
    current = catalog.current
    url = None
    if incident.runbook_id and incident.runbook_revision:
        url = current.web_url(incident.runbook_id, incident.runbook_revision)
    verifications = [
        (VerificationOut.model_validate(entry.details), entry.summary)
        for entry in timeline
        if entry.kind == TimelineKind.MITIGATION_VERIFIED
    ]
    planned = _planned(catalog, registry, incident.runbook_id, first)
    mitigations = _mitigations(planned, runs)
    if planner is not None and IncidentStatus(incident.status).is_open:
        await _plan_runnable(planner, planned, mitigations)
    for mitigation in mitigations:
        run = runs.get(mitigation.id)
        for verification, text in verifications:
            if run and (verification.mitigation_id, verification.generation) == (
                run.mitigation_id,
                run.generation,
            ):
                mitigation.verdict, mitigation.verified = verification.verdict, text
    alerts_out = [AlertOut.model_validate(alert) for alert in alerts]
    return IncidentDetail(
        **summary.model_dump(),
        runbook_url=url,
        alerts=alerts_out,
        alerts_omitted=alerts_omitted,
        timeline_omitted=timeline_omitted,
        timeline=[TimelineOut.model_validate(entry) for entry in timeline],
        mitigations=mitigations,
        changes=changes,
        verifications=[verification for verification, _ in verifications],
        scorecards=[
            ScorecardOut.model_validate(entry.details)
            for entry in timeline
            if entry.kind == TimelineKind.SCORECARD
        ],
        traces=traces.for_incident(
            summary, alerts_out, now, versions=versions, exemplars=exemplars_of(timeline)
        )
        if traces
        else [],
    )


def exemplars_of(timeline: Sequence[TimelineEntry]) -> list[ExemplarTrace]:
    """The exemplar traces recorded in the timeline (``exemplars`` entries), newest first,
    each trace once."""
    seen: dict[str, ExemplarTrace] = {}
    for entry in timeline:
        if entry.kind != TimelineKind.EXEMPLARS:
            continue
        for item in entry.details.get("exemplars", []):
            try:
                trace = ExemplarTrace(
                    str(item["trace_id"]), datetime.fromisoformat(item["at"]), str(item["metric"])
                )
            except (KeyError, TypeError, ValueError):
                continue
            seen.setdefault(trace.trace_id, trace)
    return sorted(seen.values(), key=lambda t: t.at, reverse=True)


def _now(now: datetime | None) -> datetime:
    return now or datetime.now(UTC)


async def load_changes(
    session: AsyncSession, incident: Incident, runbook: Runbook | None, window: timedelta
) -> list[ChangeOut]:
    """The change log's lines for the incident's service from ``window`` before its first
    alert until it resolved, ranked (kinds its runbook names as likely causes first)."""
    if not incident.service:
        return []
    changes = await changes_of_service(session, incident.service, incident.detected_at - window)
    ranked = rank(
        relevant(changes, until=incident.resolved_at),
        first_alert=incident.detected_at,
        likely=kinds_named(runbook.likely_causes) if runbook else set(),
    )
    return [
        ChangeOut(
            id=r.change.id,
            service=r.change.service,
            kind=r.change.kind,
            version=r.change.version,
            previous=r.change.previous,
            by=r.change.by,
            link=r.change.link,
            note=r.change.note,
            at=r.change.at,
            source=r.change.source,
            likely_cause=r.likely_cause,
            minutes_before=round(r.before_incident.total_seconds() / 60, 1),
        )
        for r in ranked
    ]


def _planned(
    catalog: LiveCatalog,
    registry: ActionRegistry,
    runbook_id: str | None,
    first: IncidentAlert | None,
) -> list[PlannedMitigation]:
    runbook = catalog.current.runbooks.get(runbook_id) if runbook_id else None
    if runbook is None or first is None:
        return []
    return plan_mitigations(runbook, registry, template_context(first))


async def _plan_runnable(
    planner: Planner, planned: Sequence[PlannedMitigation], mitigations: Sequence[MitigationOut]
) -> None:
    """What a click would change now, for each mitigation whose next run starts afresh,
    within :data:`PLAN_BUDGET` for them all."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + PLAN_BUDGET
    for plan, out in zip(planned, mitigations, strict=True):
        if (
            out.state not in _RUNNABLE
            or plan.params is None
            or plan.problem is not None
            or plan.mitigation.mode is MitigationMode.MANUAL
        ):
            continue
        late = (
            f"the control plane did not answer within {PLAN_BUDGET:g} s; "
            "the change is worked out again when the mitigation runs"
        )
        if loop.time() >= deadline:
            out.plan_error = late
            continue
        try:
            async with asyncio.timeout_at(deadline):
                out.plan = await planner(plan.mitigation.action, plan.params)
        except ActionError as err:
            out.plan_error = str(err)
        except TimeoutError:
            out.plan_error = late


def _mitigations(
    planned_mitigations: Sequence[PlannedMitigation], runs: Mapping[str, Execution]
) -> list[MitigationOut]:
    """The runbook's mitigations, previewed for this incident, with their execution state."""
    out = []
    for planned in planned_mitigations:
        run = runs.get(planned.mitigation.id)
        outcome = run.outcome if run else {}
        out.append(
            MitigationOut(
                id=planned.mitigation.id,
                title=planned.mitigation.title,
                action=planned.mitigation.action,
                mode=planned.mitigation.mode.value,
                risk=run.risk if run else planned.risk,
                preview=planned.preview if planned.problem is None else planned.problem,
                reversible=planned.reversible,
                state=run.state if run else NOT_RUN,
                requested_by=run.requested_by if run else None,
                approvals=list(run.approvals.get("actors", [])) if run else [],
                applied_at=run.applied_at if run else None,
                undone_at=run.undone_at if run else None,
                undone_by=run.undone_by if run else None,
                before=outcome.get("before"),
                after=outcome.get("after"),
                error=run.error if run else None,
                plan=run.plan if run and run.state == AWAITING_APPROVAL else None,
            )
        )
    return out
