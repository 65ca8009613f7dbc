"""``GET /api/v1/incidents/{id}/postmortem``: the draft, as Markdown or (``?format=json``) JSON.

Drafted fresh from the current facts on every request, without the language model: reading
is cheap, side-effect free and always matches the timeline. The draft made on resolve (maybe
polished) is the stored one, under ``latest``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from bot.api.json_body import JsonBodyRoute
from bot.api.principals import require
from bot.api.schemas import IncidentIdPath
from bot.api.services import Services, services_of
from bot.auth.roles import Role
from bot.errors import ConflictError
from bot.postmortem.draft import file_name
from bot.postmortem.service import PostmortemService

router = APIRouter(prefix="/api/v1", tags=["postmortems"], route_class=JsonBodyRoute)

ServicesDep = Annotated[Services, Depends(services_of)]


def _postmortems(services: Services) -> PostmortemService:
    if services.postmortems is None:
        raise ConflictError("postmortems are not wired in this process; build it with bot.app")
    return services.postmortems


@router.get(
    "/incidents/{incident_id}/postmortem",
    responses={200: {"content": {"text/markdown": {}, "application/json": {}}}},
    dependencies=[Depends(require(Role.READER))],
)
async def show_postmortem(
    incident_id: IncidentIdPath,
    services: ServicesDep,
    output: Annotated[Literal["markdown", "json"], Query(alias="format")] = "markdown",
) -> Response:
    postmortems = _postmortems(services)
    facts = await postmortems.facts(incident_id)
    draft = await postmortems.draft(incident_id)
    if output == "markdown":
        return PlainTextResponse(draft.markdown, media_type="text/markdown; charset=utf-8")
    latest = await postmortems.latest(incident_id)
    body: dict[str, Any] = {
        "incident_id": incident_id,
        "title": draft.title,
        "summary": draft.summary,
        "markdown": draft.markdown,
        "template": draft.template,
        "template_error": draft.template_error,
        "file_name": file_name(facts),
        "facts": facts.model_dump(mode="json"),
        "latest": None
        if latest is None
        else {
            "id": latest.id,
            "created_at": latest.created_at.isoformat(),
            "polished": latest.polished,
            "path": latest.path,
            "summary": latest.summary,
        },
    }
    return JSONResponse(body)
