"""Runbook pages: the catalog with search, and each runbook as responders read it (symptom,
impact, dashboards, likely causes, mitigations with risk and approval policy, escalation), with
its validation state, its commit when runbooks come from git, and its incidents."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from bot.api.services import Services, services_of
from bot.auth.principal import Principal
from bot.auth.roles import Role
from bot.incidents.read_model import IncidentSummary
from bot.runbooks.schema import MitigationMode, Runbook
from bot.store import incidents as repo
from bot.web.pages import PREFIX, need, render

router = APIRouter(prefix=PREFIX, include_in_schema=False)

ServicesDep = Annotated[Services, Depends(services_of)]
ReaderDep = Annotated[Principal, Depends(need(Role.READER))]

POLICY = {
    MitigationMode.AUTO: "runs by itself when its risk is low; otherwise as approve",
    MitigationMode.APPROVE: "one owner runs it; high risk needs a second, different owner",
    MitigationMode.MANUAL: "a person does it by hand and marks it done",
}


def _searchable(runbook: Runbook) -> str:
    return " ".join(
        [runbook.id, runbook.title, runbook.service, runbook.symptom, runbook.business_impact]
        + runbook.match
        + runbook.likely_causes
        + [m.title for m in runbook.mitigations]
    ).lower()


def _catalog_state(services: Services) -> dict[str, Any]:
    """The catalog's validation state and where it came from (folder, or git commit)."""
    catalog = services.catalog
    last = catalog.last_load
    revision = catalog.current.revision
    return {
        "version": catalog.version,
        "loaded_at": catalog.loaded_at,
        "source": "git" if services.syncer is not None else "folder",
        "commit": revision.commit if revision else None,
        "git": services.syncer.status() if services.syncer is not None else None,
        "refused": [str(d) for d in last.errors] if last and last.catalog is None else [],
        "warnings": [str(d) for d in last.warnings] if last else [],
    }


@router.get("/runbooks")
async def runbook_list(
    request: Request,
    services: ServicesDep,
    _: ReaderDep,
    q: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """The catalog, filtered by every word of ``q``."""
    words = (q or "").lower().split()
    runbooks = [
        runbook
        for runbook in services.catalog.current.runbooks.values()
        if all(word in _searchable(runbook) for word in words)
    ]
    return render(
        request,
        "runbooks.html",
        {"runbooks": runbooks, "q": q or "", "state": _catalog_state(services)},
    )


def _risk(services: Services, action_name: str, params: dict[str, Any]) -> str:
    """The action's risk for the runbook's literal params, when they decide it."""
    try:
        action = services.registry[action_name]
        return str(action.risk(action.parse(params), None).value)
    except Exception:  # params are templates over the alert: decided at run time
        return "decided per alert"


@router.get("/runbooks/{runbook_id:path}")
async def runbook_page(
    request: Request, runbook_id: str, services: ServicesDep, _: ReaderDep
) -> Response:
    """One runbook as responders read it, with its incidents."""
    catalog = services.catalog.current
    runbook = catalog.runbooks.get(runbook_id)
    if runbook is None:
        return render(
            request, "error.html", {"message": f"no runbook {runbook_id!r}"}, status_code=404
        )
    async with services.db.sessions() as session:
        rows = await repo.list_incidents(session, runbook_id=runbook_id, limit=50)
        incidents = [IncidentSummary.model_validate(row) for row in rows]
    path = catalog.path_of(runbook_id)
    state = _catalog_state(services)
    warnings = [w for w in state["warnings"] if path is not None and w.startswith(str(path))]
    return render(
        request,
        "runbook.html",
        {
            "runbook": runbook,
            "path": path,
            "state": state,
            "warnings": warnings,
            "incidents": incidents,
            "mitigations": [
                {
                    "m": m,
                    "risk": _risk(services, m.action, m.params),
                    "policy": POLICY[m.mode],
                }
                for m in runbook.mitigations
            ],
        },
    )
