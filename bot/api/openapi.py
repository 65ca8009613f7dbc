"""``GET /openapi.json`` for readers only: the schema lists every endpoint and owner field, so
it is closed like the rest of the API (FastAPI's open default is switched off in bot.app)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from bot.api.principals import require
from bot.auth.roles import Role

router = APIRouter(tags=["api"])


@router.get("/openapi.json", include_in_schema=False, dependencies=[Depends(require(Role.READER))])
async def openapi(request: Request) -> dict[str, Any]:
    schema: dict[str, Any] = request.app.openapi()
    return schema
