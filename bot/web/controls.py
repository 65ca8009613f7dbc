"""Control pages: every key per service with its current value and backend, and each key's
history (who, when, why, which incident) with links both ways. Operators may set a value in
the built-in store here, through the same checks and audit as ``PUT /api/v1/controls/{key}``.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response
from sqlalchemy import select

from actions.control_values import ControlValueError, parse_key
from actions.errors import ActionError
from bot.api import controls as api
from bot.api.services import Services, services_of
from bot.auth.principal import Principal
from bot.auth.roles import Role
from bot.controls.history import ControlChange
from bot.incidents.timeline import TimelineKind
from bot.store.tables import StoredControlChange, TimelineEntry
from bot.web.forms import checked_form
from bot.web.pages import PREFIX, back_to, need, render

router = APIRouter(prefix=PREFIX, include_in_schema=False)

ServicesDep = Annotated[Services, Depends(services_of)]
ReaderDep = Annotated[Principal, Depends(need(Role.READER))]
OperatorDep = Annotated[Principal, Depends(need(Role.OPERATOR))]
READ_TIMEOUT = 2.0  # seconds for a flagd/Unleash read before the page says "unavailable"
LINKED_KINDS = (TimelineKind.MITIGATION_APPLIED.value, TimelineKind.MITIGATION_UNDONE.value)


async def _known_keys(services: Services) -> list[str]:
    """Keys with a value in the built-in store or any recorded change."""
    stored = {c.key for c in await services.controls.list()}
    async with services.db.sessions() as session:
        changed = set(await session.scalars(select(StoredControlChange.key).distinct()))
    return sorted(stored | changed)


async def _current(services: Services, key: str, service: str) -> tuple[str, Any, bool]:
    """(backend name, value, readable) of ``key`` where its service's applications read it."""
    backend = services.contexts.backend_for(service)
    try:
        value = await asyncio.wait_for(backend.read(key), READ_TIMEOUT)
    except (ActionError, TimeoutError, OSError):
        return backend.name, None, False
    return backend.name, value, True


@router.get("/controls")
async def control_list(request: Request, services: ServicesDep, _: ReaderDep) -> Response:
    """Every known key, grouped by service, read where its applications read it."""
    by_service: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for key in await _known_keys(services):
        service = parse_key(key).service
        backend, value, readable = await _current(services, key, service)
        by_service[service].append(
            {"key": key, "backend": backend, "value": value, "readable": readable}
        )
    return render(request, "controls.html", {"services": dict(sorted(by_service.items()))})


async def _incidents_of(services: Services, key: str) -> dict[int, int]:
    """History id → incident id, from the mitigations' timeline entries that changed ``key``."""
    async with services.db.sessions() as session:
        entries = await session.scalars(
            select(TimelineEntry)
            .where(TimelineEntry.kind.in_(LINKED_KINDS))
            .order_by(TimelineEntry.id.desc())
            .limit(2000)
        )
        found: dict[int, int] = {}
        for entry in entries:
            details = entry.details or {}
            history_id = (details.get("response") or {}).get("history_id")
            if details.get("key") == key and isinstance(history_id, int):
                found[history_id] = entry.incident_id
        return found


def _linked(history: list[ControlChange], entries: dict[int, int]) -> dict[int, int]:
    return {change.id: entries[change.id] for change in history if change.id in entries}


@router.get("/controls/{key}")
async def control_page(request: Request, key: str, services: ServicesDep, _: ReaderDep) -> Response:
    """One key: its value, backend and history, each change linked to its incident."""
    return await _control_page(request, key, services)


async def _control_page(
    request: Request, key: str, services: Services, error: str | None = None, status_code: int = 200
) -> Response:
    try:
        control = parse_key(key)
    except ControlValueError as err:
        return render(request, "error.html", {"message": str(err)}, status_code=404)
    backend, value, readable = await _current(services, key, control.service)
    history = await services.history.history(key, limit=200)
    incidents = _linked(history, await _incidents_of(services, key))
    return render(
        request,
        "control.html",
        {
            "key": key,
            "backend": backend,
            "value": value,
            "readable": readable,
            "history": history,
            "incidents": incidents,
            "builtin": backend == services.controls.name,
            "error": error,
        },
        status_code=status_code,
    )


@router.post("/controls/{key}")
async def set_control(
    request: Request, key: str, services: ServicesDep, principal: OperatorDep
) -> Response:
    """Set a value in the built-in store: the API's handler, so the API's checks and audit."""
    form = await checked_form(request)
    raw = form.get("value", "")
    value: Any = {"true": True, "false": False}.get(raw, raw)
    body = api.ControlWrite(value=value, reason=form.get("reason") or None)
    try:
        result = await api.set_control(key, body, services.controls, request, principal)
    except HTTPException as err:
        return await _control_page(request, key, services, str(err.detail), err.status_code)
    return back_to(request, f"/controls/{key}", f"{key}: {result.before} → {result.after}")
