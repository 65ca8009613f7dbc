"""The incidents JSON API: list, show, acknowledge, resolve."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status

from bot.api.auth import require_token
from bot.api.schemas import (
    ActorBody,
    AlertOut,
    IncidentDetail,
    IncidentList,
    IncidentSummary,
    MitigationOut,
    TimelineOut,
)
from bot.api.services import Services, services_of
from bot.errors import ConflictError, NotFoundError
from bot.execution.plan import plan_mitigations
from bot.incidents import operations
from bot.incidents.lifecycle import IncidentStatus
from bot.intake.alert import Alert
from bot.store import incidents as repo
from bot.store.tables import IncidentAlert

router = APIRouter(prefix="/api/v1", tags=["incidents"])

ServicesDep = Annotated[Services, Depends(services_of)]


def require_api_token(request: Request) -> None:
    require_token(
        request, services_of(request).settings.api_token, what="API", env="BALLAST_API_TOKEN"
    )


@router.get("/incidents", response_model=IncidentList)
async def list_incidents(
    services: ServicesDep,
    status_filter: Annotated[list[IncidentStatus] | None, Query(alias="status")] = None,
    service: str | None = None,
    runbook: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before_id: int | None = None,
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
        return IncidentList(incidents=[IncidentSummary.of(row) for row in rows])


@router.get("/incidents/{incident_id}", response_model=IncidentDetail)
async def show_incident(incident_id: int, services: ServicesDep) -> IncidentDetail:
    return await incident_detail(services, incident_id)


@router.post(
    "/incidents/{incident_id}/acknowledge",
    response_model=IncidentDetail,
    dependencies=[Depends(require_api_token)],
)
async def acknowledge_incident(
    incident_id: int, body: ActorBody, services: ServicesDep
) -> IncidentDetail:
    try:
        async with services.db.transaction() as session:
            await operations.acknowledge(session, incident_id, body.actor, services.clock())
    except NotFoundError as err:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(err)) from None
    except ConflictError as err:
        raise HTTPException(status.HTTP_409_CONFLICT, str(err)) from None
    return await incident_detail(services, incident_id)


@router.post(
    "/incidents/{incident_id}/resolve",
    response_model=IncidentDetail,
    dependencies=[Depends(require_api_token)],
)
async def resolve_incident(
    incident_id: int, body: ActorBody, services: ServicesDep
) -> IncidentDetail:
    try:
        async with services.db.transaction() as session:
            await operations.resolve(
                session, incident_id, body.actor, services.clock(), body.reason or ""
            )
    except NotFoundError as err:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(err)) from None
    except ConflictError as err:
        raise HTTPException(status.HTTP_409_CONFLICT, str(err)) from None
    return await incident_detail(services, incident_id)


async def incident_detail(services: Services, incident_id: int) -> IncidentDetail:
    async with services.db.sessions() as session:
        try:
            incident = await repo.get(session, incident_id)
        except NotFoundError as err:
            raise HTTPException(status.HTTP_404_NOT_FOUND, str(err)) from None
        alerts = await repo.alerts_of(session, incident_id)
        timeline = await repo.timeline_of(session, incident_id)
    summary = IncidentSummary.of(incident)
    return IncidentDetail(
        **summary.model_dump(),
        alerts=[AlertOut.of(alert) for alert in alerts],
        timeline=[TimelineOut.of(entry) for entry in timeline],
        mitigations=_mitigations(services, incident.runbook_id, alerts),
    )


def _mitigations(
    services: Services, runbook_id: str | None, alerts: Sequence[IncidentAlert]
) -> list[MitigationOut]:
    """The runbook's mitigations, previewed for this incident's alerts."""
    runbook = services.catalog.current.runbooks.get(runbook_id) if runbook_id else None
    if runbook is None or not alerts:
        return []
    first = alerts[0]
    context = Alert(
        fingerprint=first.fingerprint,
        status=first.status,
        labels=first.labels,
        annotations=first.annotations,
        starts_at=first.starts_at,
        ends_at=first.ends_at,
        generator_url=first.generator_url,
        source=first.source,
    ).template_context()
    return [
        MitigationOut(
            id=planned.mitigation.id,
            title=planned.mitigation.title,
            action=planned.mitigation.action,
            mode=planned.mitigation.mode.value,
            risk=planned.risk,
            preview=planned.preview if planned.problem is None else planned.problem,
            state="not_run",
        )
        for planned in plan_mitigations(runbook, services.registry, context)
    ]
