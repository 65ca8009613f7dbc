"""The incidents JSON API: list, show, acknowledge, resolve, comment, escalate."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, status

from bot.api.json_body import JsonBodyRoute
from bot.api.principals import acting, require
from bot.api.schemas import (
    ActorBody,
    BeforeIdQuery,
    CommentBody,
    EscalationOut,
    IncidentIdPath,
    IncidentList,
)
from bot.api.services import Services, services_of
from bot.auth.principal import Principal
from bot.auth.roles import Role
from bot.incidents import operations
from bot.incidents.changes import ChangeKind, Note
from bot.incidents.detail import load_incident_detail
from bot.incidents.lifecycle import IncidentStatus
from bot.incidents.read_model import IncidentDetail, IncidentSummary
from bot.store import incidents as repo

router = APIRouter(prefix="/api/v1", tags=["incidents"], route_class=JsonBodyRoute)

ServicesDep = Annotated[Services, Depends(services_of)]
Reader = [Depends(require(Role.READER))]
ResponderDep = Annotated[Principal, Depends(require(Role.RESPONDER))]


@router.get("/incidents", response_model=IncidentList, dependencies=Reader)
async def list_incidents(
    services: ServicesDep,
    status_filter: Annotated[list[IncidentStatus] | None, Query(alias="status")] = None,
    service: str | None = None,
    runbook: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before_id: BeforeIdQuery = None,
) -> IncidentList:
    """Newest first. ``status`` may repeat; ``before_id`` pages backwards."""
    async with services.db.sessions() as session:
        rows = await repo.list_incidents(
            session,
            statuses=status_filter or (),
            service=service,
            runbook_id=runbook,
            limit=limit,
            before_id=before_id,
        )
        return IncidentList(incidents=[IncidentSummary.model_validate(row) for row in rows])


# A storm incident holds tens of thousands of alerts and as many timeline entries (29 MB of
# JSON and seconds of reads at 50,000): a caller that shows it asks for a bounded part.
DetailLimit = Annotated[int | None, Query(ge=0, le=100_000)]


@dataclass(frozen=True, slots=True)
class DetailLimits:
    """How much of an incident's detail an answer carries (see :func:`show_incident`)."""

    alerts_limit: int | None = None
    alert_entries_limit: int | None = None


def detail_limits(
    alerts_limit: DetailLimit = None, alert_entries_limit: DetailLimit = None
) -> DetailLimits:
    """The query's limits, for every endpoint that answers with an incident's detail."""
    return DetailLimits(alerts_limit, alert_entries_limit)


LimitsDep = Annotated[DetailLimits, Depends(detail_limits)]


@router.get("/incidents/{incident_id}", response_model=IncidentDetail, dependencies=Reader)
async def show_incident(
    incident_id: IncidentIdPath, services: ServicesDep, limits: LimitsDep
) -> IncidentDetail:
    """Every alert and every timeline entry, unless limited: ``alerts_limit`` alerts at most
    (the first, then firing before the others), ``alert_entries_limit`` of the entries each
    alert leaves (the newest; entries of other kinds are all returned). ``alerts_omitted``
    and ``timeline_omitted`` count what the limits left out."""
    return await incident_detail(services, incident_id, **asdict(limits))


@router.post("/incidents/{incident_id}/acknowledge", response_model=IncidentDetail)
async def acknowledge_incident(
    incident_id: IncidentIdPath,
    body: ActorBody,
    services: ServicesDep,
    principal: ResponderDep,
    limits: LimitsDep,
) -> IncidentDetail:
    """The incident acknowledged, answered as ``GET /incidents/{id}`` with the same limits
    (a caller that only wants the new state asks for 0 of each)."""
    await acknowledge(incident_id, body, services, principal)
    return await incident_detail(services, incident_id, **asdict(limits))


async def acknowledge(
    incident_id: int, body: ActorBody, services: Services, principal: Principal
) -> None:
    """Acknowledge, as the API and the console do (the console answers with its own page, not
    the detail: a storm incident's is tens of MB)."""
    actor = acting(principal, body.actor)
    async with services.db.transaction() as session:
        changed = await operations.acknowledge(session, incident_id, actor, services.clock())
    if changed:
        await services.bus.changed(incident_id, ChangeKind.STATUS, Note("Acknowledged", actor.name))


@router.post("/incidents/{incident_id}/resolve", response_model=IncidentDetail)
async def resolve_incident(
    incident_id: IncidentIdPath,
    body: ActorBody,
    services: ServicesDep,
    principal: ResponderDep,
    limits: LimitsDep,
) -> IncidentDetail:
    """The incident resolved, answered as ``GET /incidents/{id}`` with the same limits."""
    await resolve(incident_id, body, services, principal)
    return await incident_detail(services, incident_id, **asdict(limits))


async def resolve(
    incident_id: int, body: ActorBody, services: Services, principal: Principal
) -> None:
    """Resolve, as the API and the console do (see :func:`acknowledge`)."""
    actor = acting(principal, body.actor)
    async with services.db.transaction() as session:
        changed = await operations.resolve(
            session, incident_id, actor, services.clock(), body.reason or ""
        )
    if changed:
        await services.bus.changed(incident_id, ChangeKind.RESOLVED, Note("Resolved", actor.name))


@router.post(
    "/incidents/{incident_id}/comments",
    response_model=IncidentDetail,
    status_code=status.HTTP_201_CREATED,
)
async def comment_on_incident(
    incident_id: IncidentIdPath,
    body: CommentBody,
    services: ServicesDep,
    principal: ResponderDep,
    limits: LimitsDep,
) -> IncidentDetail:
    """A note in the timeline (and the Slack thread), kept for the postmortem; answered as
    ``GET /incidents/{id}`` with the same limits."""
    actor = acting(principal, body.actor)
    async with services.db.transaction() as session:
        await operations.comment(session, incident_id, actor, services.clock(), body.text)
    await services.bus.changed(incident_id, ChangeKind.UPDATED, Note(body.text, actor.name))
    return await incident_detail(services, incident_id, **asdict(limits))


@router.post("/incidents/{incident_id}/escalate", response_model=EscalationOut)
async def escalate_incident(
    incident_id: IncidentIdPath, body: ActorBody, services: ServicesDep, principal: ResponderDep
) -> EscalationOut:
    """Fire the runbook's next escalation step now; 409 when none is left to fire."""
    actor = acting(principal, body.actor)
    result = await services.escalator.escalate_next(incident_id, actor)
    if result.step is None:
        raise HTTPException(status.HTTP_409_CONFLICT, result.summary)
    await services.bus.changed(
        incident_id, ChangeKind.UPDATED, Note(f"Escalated: {result.summary}", actor.name)
    )
    return EscalationOut(incident_id=incident_id, step=result.step, summary=result.summary)


async def incident_detail(
    services: Services,
    incident_id: int,
    *,
    alerts_limit: int | None = None,
    alert_entries_limit: int | None = None,
) -> IncidentDetail:
    return await load_incident_detail(
        services.db,
        services.catalog,
        services.registry,
        incident_id,
        change_window=services.change_window,
        traces=services.traces,
        now=services.clock(),
        planner=services.executor.plan_now,
        alert_limit=alerts_limit,
        alert_entries_limit=alert_entries_limit,
    )
