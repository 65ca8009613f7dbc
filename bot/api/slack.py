"""``POST /slack/events``: events, slash commands and interactivity, handed to Bolt.

Bolt verifies the signature (a stale or badly signed request gets 401) and acks before the
listeners do their work.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from bot.api.services import services_of

router = APIRouter(tags=["slack"])


@router.post("/slack/events", include_in_schema=False)
async def slack_events(request: Request) -> Response:
    handler = services_of(request).slack_handler
    if handler is None:
        return JSONResponse(
            {"detail": "Slack is not configured: set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET"},
            status_code=404,
        )
    response: Response = await handler.handle(request)
    return response
