"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from bot.api.auth import require_access
from bot.api.services import Services, services_of
from bot.auth.roles import Role
from bot.incidents.lifecycle import IncidentStatus
from bot.store import inbox
from bot.store import incidents as repo

router = APIRouter(tags=["health"])

ServicesDep = Annotated[Services, Depends(services_of)]


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up and serving; nothing else is checked (that is /readyz)."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(services: ServicesDep) -> JSONResponse:
    """Ready when the schema is migrated, runbooks are loaded and the database answers."""
    state = "stopping" if services.draining else "starting"
    checks: dict[str, str] = {"startup": "ok" if services.ready else state}
    try:
        async with services.db.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as err:
        checks["database"] = f"error: {type(err).__name__}"
    checks["runbooks"] = f"{len(services.catalog.current.runbooks)} loaded"
    ready = checks["startup"] == "ok" and checks["database"] == "ok"
    return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)


@router.get("/metrics")
async def metrics(services: ServicesDep, request: Request) -> Response:
    """Prometheus exposition; gauges that need the database are refreshed per scrape (the
    inbox's pending count at most as often as its cost allows: ``PendingCount``).

    Needs ``BALLAST_METRICS_TOKEN`` (a bearer token, as Prometheus's ``authorization`` scrape
    option sends it) or a named token with the reader role."""
    await require_access(
        request,
        services.settings.metrics_token,
        role=Role.READER,
        what="metrics",
        env="BALLAST_METRICS_TOKEN",
    )
    async with services.db.sessions() as session:
        counts = await repo.count_by_status(session)
        oldest = await inbox.oldest_unprocessed(session)
        pending = await services.pending.read(session)
    for state in IncidentStatus:
        services.metrics.incidents.labels(state).set(counts.get(state, 0))
    lag = (services.clock() - oldest).total_seconds() if oldest else 0.0
    services.metrics.inbox_lag.set(max(lag, 0.0))
    services.metrics.inbox_pending.set(pending)
    return Response(generate_latest(services.metrics.registry), media_type=CONTENT_TYPE_LATEST)
