"""An incident with everything about it, as the API, Slack and the CLI show it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from actions.registry import ActionRegistry
from bot.incidents.plan import plan_mitigations
from bot.incidents.read_model import (
    NOT_RUN,
    AlertOut,
    IncidentDetail,
    IncidentSummary,
    MitigationOut,
    TimelineOut,
)
from bot.intake.alert import template_context
from bot.runbooks.catalog import LiveCatalog
from bot.store import executions
from bot.store import incidents as repo
from bot.store.database import Database
from bot.store.tables import Execution, IncidentAlert


async def load_incident_detail(
    db: Database, catalog: LiveCatalog, registry: ActionRegistry, incident_id: int
) -> IncidentDetail:
    """Raises ``NotFoundError`` for an unknown id."""
    async with db.sessions() as session:
        incident = await repo.get(session, incident_id)
        alerts = await repo.alerts_of(session, incident_id)
        timeline = await repo.timeline_of(session, incident_id)
        runs = {
            row.mitigation_id: row for row in await executions.of_incident(session, incident_id)
        }
    summary = IncidentSummary.model_validate(incident)
    current = catalog.current
    url = None
    if incident.runbook_id and incident.runbook_revision:
        url = current.web_url(incident.runbook_id, incident.runbook_revision)
    return IncidentDetail(
        **summary.model_dump(),
        runbook_url=url,
        alerts=[AlertOut.model_validate(alert) for alert in alerts],
        timeline=[TimelineOut.model_validate(entry) for entry in timeline],
        mitigations=_mitigations(catalog, registry, incident.runbook_id, alerts, runs),
    )


def _mitigations(
    catalog: LiveCatalog,
    registry: ActionRegistry,
    runbook_id: str | None,
    alerts: Sequence[IncidentAlert],
    runs: Mapping[str, Execution],
) -> list[MitigationOut]:
    """The runbook's mitigations, previewed for this incident, with their execution state."""
    runbook = catalog.current.runbooks.get(runbook_id) if runbook_id else None
    if runbook is None or not alerts:
        return []
    out = []
    for planned in plan_mitigations(runbook, registry, template_context(alerts[0])):
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
            )
        )
    return out
