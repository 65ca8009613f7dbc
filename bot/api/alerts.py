"""``GET /api/v1/alerts?since=7d``: the alerts received lately, for ``ballast runbooks diff``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, status

from bot.api.json_body import JsonBodyRoute
from bot.api.principals import require
from bot.api.services import Services, services_of
from bot.auth.roles import Role
from bot.errors import BallastError
from bot.runbooks.duration import parse_duration
from bot.store.alert_history import alerts_since

router = APIRouter(prefix="/api/v1", tags=["alerts"], route_class=JsonBodyRoute)

ServicesDep = Annotated[Services, Depends(services_of)]


@router.get("/alerts", dependencies=[Depends(require(Role.READER))])
async def list_alerts(
    services: ServicesDep,
    since: Annotated[str, Query(max_length=20, description="A duration back from now: 7d")] = "7d",
    limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000,
) -> dict[str, Any]:
    """The latest state of each alert (by fingerprint) received within ``since``, newest
    first: the traffic ``ballast runbooks diff --from-server`` replays."""
    try:
        start = services.clock() - parse_duration(since)
    except (BallastError, ValueError, OverflowError) as err:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"since: {err}") from None
    async with services.db.sessions() as session:
        alerts = await alerts_since(session, start, limit)
    return {"since": start.isoformat(), "alerts": alerts}
