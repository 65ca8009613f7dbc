"""Runbook catalog API: what is loaded, and an atomic reload."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from bot.api.json_body import JsonBodyRoute
from bot.api.principals import require
from bot.api.services import Services, services_of
from bot.auth.roles import Role
from bot.errors import Diagnostic
from bot.gitsync.syncer import SyncOutcome

router = APIRouter(prefix="/api/v1/runbooks", tags=["runbooks"], route_class=JsonBodyRoute)

ServicesDep = Annotated[Services, Depends(services_of)]


@router.get("", dependencies=[Depends(require(Role.READER))])
async def list_runbooks(services: ServicesDep) -> dict[str, Any]:
    catalog = services.catalog.current
    revision = catalog.revision
    last = services.catalog.last_load
    return {
        "version": services.catalog.version,
        "loaded_at": services.catalog.loaded_at.isoformat(),
        "source": "git" if services.syncer is not None else "folder",
        "revision": revision.commit if revision else None,
        "git": services.syncer.status() if services.syncer is not None else None,
        "last_reload_errors": [str(d) for d in last.errors]
        if last is not None and last.catalog is None
        else [],
        "runbooks": [
            {
                "id": runbook.id,
                "title": runbook.title,
                "service": runbook.service,
                "severity": runbook.severity.value,
                "owners": runbook.owners,
                "match": runbook.match,
                "group_by": runbook.group_by,
                "mitigations": [m.id for m in runbook.mitigations],
                "path": str(catalog.path_of(runbook.id)),
            }
            for runbook in sorted(catalog.runbooks.values(), key=lambda r: r.id)
        ],
    }


@router.post("/reload", dependencies=[Depends(require(Role.OPERATOR))])
async def reload_runbooks(services: ServicesDep) -> JSONResponse:
    """Reload from disk; an invalid catalog is refused and the last good one stays live."""
    result = await reload_catalog(services)
    errors = [str(d) for d in result if d.severity == "error"]
    warnings = [str(d) for d in result if d.severity != "error"]
    body = {
        "reloaded": not errors,
        "version": services.catalog.version,
        "runbooks": len(services.catalog.current.runbooks),
        "errors": errors,
        "warnings": warnings,
    }
    return JSONResponse(body, status_code=422 if errors else 200)


async def reload_catalog(services: Services) -> list[Any]:
    """Shared by the API and SIGHUP. Returns the diagnostics.

    With runbooks.git, a reload is a sync: fetch the ref, validate its commit, swap it in.
    """
    if services.syncer is not None:
        result = await services.syncer.sync()
        if result.outcome is SyncOutcome.FAILED:
            return [Diagnostic(Path(services.syncer.source.display_url), 1, 1, result.detail or "")]
        return [
            *(_Line(text, "error") for text in result.errors),
            *(_Line(text, "warning") for text in result.warnings),
        ]
    load = await services.catalog.areload([services.settings.runbooks], services.registry)
    ok = load.catalog is not None
    services.metrics.catalog_reloads.labels("ok" if ok else "refused").inc()
    return list(load.diagnostics)


@dataclass(frozen=True, slots=True)
class _Line:
    """A diagnostic already rendered (``path:line:col: message``) by the git syncer."""

    text: str
    severity: str

    def __str__(self) -> str:
        return self.text
