"""Incident pages: the list (filters, live refresh), the detail, the postmortem draft, and the
forms that act (acknowledge, resolve, run/approve, undo, dry run).

Each form calls what the API calls: ``bot.api.incidents``' acknowledge and
resolve, the executor (through the API's ``acting``) for mitigations. So the owner and
two-person rules, and the words of a refusal, are the API's; only the status code is carried
into an HTML page instead of JSON.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import RedirectResponse, Response

from bot.api import incidents as api
from bot.api.principals import acting
from bot.api.schemas import ActorBody
from bot.api.services import Services, services_of
from bot.auth.principal import Principal
from bot.auth.roles import Role
from bot.errors import BallastError, ConflictError, NotFoundError, PolicyError, TemplateError
from bot.incidents.lifecycle import IncidentStatus
from bot.incidents.read_model import IncidentDetail, IncidentSummary
from bot.intake.alert import template_context
from bot.runbooks.schema import Runbook, Severity
from bot.runbooks.templates import is_template, render_template
from bot.store import incidents as repo
from bot.web import charts
from bot.web.forms import checked_form
from bot.web.markdown import render as render_markdown
from bot.web.pages import PREFIX, back_to, need, render

router = APIRouter(prefix=PREFIX, include_in_schema=False)

ServicesDep = Annotated[Services, Depends(services_of)]
ReaderDep = Annotated[Principal, Depends(need(Role.READER))]
ResponderDep = Annotated[Principal, Depends(need(Role.RESPONDER))]

SINCE = {"1h": timedelta(hours=1), "24h": timedelta(days=1), "7d": timedelta(days=7)}
SINCE |= {"30d": timedelta(days=30)}
LIST_LIMIT = 500
STATUS_OF_ERROR: dict[type[BallastError], int] = {
    NotFoundError: 404,
    PolicyError: 403,
    ConflictError: 409,
}


@router.get("/")
async def home(_: ReaderDep) -> Response:
    """The console's front page is the incident list."""
    return RedirectResponse(PREFIX + "/incidents", status_code=303)


@router.get("/incidents")
async def incident_list(
    request: Request,
    services: ServicesDep,
    _: ReaderDep,
    status: Annotated[list[IncidentStatus] | None, Query()] = None,
    service: Annotated[str | None, Query(max_length=63)] = None,
    runbook: Annotated[str | None, Query(max_length=200)] = None,
    severity: Annotated[str | None, Query(max_length=16)] = None,
    since: Annotated[str | None, Query(max_length=8)] = None,
) -> Response:
    """Newest first, filtered; the table refreshes itself (console.js) every few seconds."""
    async with services.db.sessions() as session:
        rows = await repo.list_incidents(
            session,
            statuses=status or (),
            service=service or None,
            runbook_id=runbook or None,
            limit=LIST_LIMIT,
        )
        incidents = [IncidentSummary.model_validate(row) for row in rows]
    if severity:
        incidents = [i for i in incidents if i.severity == severity]
    window = SINCE.get(since or "")
    if window is not None:
        cutoff = services.clock() - window
        incidents = [i for i in incidents if i.opened_at >= cutoff]
    catalog = services.catalog.current
    return render(
        request,
        "incidents.html",
        {
            "incidents": incidents,
            "statuses": list(IncidentStatus),
            "severities": [s.value for s in Severity] + ["triage"],
            "services": sorted({r.service for r in catalog.runbooks.values()}),
            "runbooks": sorted(catalog.runbooks),
            "since_choices": list(SINCE),
            "chosen": {
                "status": [s.value for s in status or ()],
                "service": service or "",
                "runbook": runbook or "",
                "severity": severity or "",
                "since": since or "",
            },
        },
    )


# What an incident's page lists of a storm incident's tens of thousands of alerts and entries
# (the chart still counts them all); the API's detail without limits has the rest.
PAGE_ALERTS = 200
PAGE_ALERT_ENTRIES = 200


async def _detail_page(
    request: Request,
    services: Services,
    incident_id: int,
    *,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    try:
        detail = await api.incident_detail(
            services,
            incident_id,
            alerts_limit=PAGE_ALERTS,
            alert_entries_limit=PAGE_ALERT_ENTRIES,
        )
    except NotFoundError as err:
        return render(request, "error.html", {"message": str(err)}, status_code=404)
    async with services.db.sessions() as session:
        per_minute = await repo.alert_starts_per_minute(session, incident_id)
    runbook = (
        services.catalog.current.runbooks.get(detail.runbook_id) if detail.runbook_id else None
    )
    return render(
        request,
        "incident.html",
        {
            "incident": detail,
            "runbook": runbook,
            "error": error,
            "alerts_chart": charts.alerts_per_minute(
                per_minute, detail.resolved_at, services.clock()
            ),
            "scorecard_charts": charts.scorecard_panels(detail),
            "timeline": _timeline(detail),
            "dashboards": _dashboards(runbook, detail),
        },
        status_code=status_code,
    )


def _dashboards(runbook: Runbook | None, detail: IncidentDetail) -> list[dict[str, str | None]]:
    """The runbook's dashboards filled in from the incident's first alert (as Slack's card
    does); the page links only http(s) URLs."""
    if runbook is None:
        return []
    context = template_context(detail.alerts[0]) if detail.alerts else None
    links: list[dict[str, str | None]] = []
    for dashboard in runbook.dashboards:
        url: str | None = dashboard.url
        note = None
        if is_template(dashboard.url):
            if context is None:
                url, note = None, "no alert to fill in the link from"
            else:
                try:
                    url = render_template(dashboard.url, context)
                except TemplateError as err:
                    url, note = None, f"link not rendered: {err}"
        links.append({"title": dashboard.title, "url": url, "note": note})
    return links


def _timeline(detail: IncidentDetail) -> list[dict[str, object]]:
    """Timeline entries with the before/after values their details carry, if any."""
    rows: list[dict[str, object]] = []
    for entry in detail.timeline:
        details = entry.details
        rows.append(
            {
                "entry": entry,
                "key": details.get("key"),
                "has_values": details.get("before") is not None or details.get("after") is not None,
                "before": details.get("before"),
                "after": details.get("after"),
            }
        )
    return rows


@router.get("/incidents/{incident_id}")
async def incident_page(
    request: Request, incident_id: int, services: ServicesDep, _: ReaderDep
) -> Response:
    """One incident as responders read it, with the forms that act on it."""
    return await _detail_page(request, services, incident_id)


@router.get("/incidents/{incident_id}/postmortem")
async def postmortem_page(
    request: Request, incident_id: int, services: ServicesDep, _: ReaderDep
) -> Response:
    """The draft as it reads now (drafted fresh, no language model), rendered safely."""
    if services.postmortems is None:
        return render(request, "error.html", {"message": "postmortems are off"}, status_code=409)
    try:
        draft = await services.postmortems.draft(incident_id)
    except NotFoundError as err:
        return render(request, "error.html", {"message": str(err)}, status_code=404)
    return render(
        request,
        "postmortem.html",
        {"draft": draft, "html": render_markdown(draft.markdown), "incident_id": incident_id},
    )


async def _act(
    request: Request, services: Services, incident_id: int, action: str, principal: Principal
) -> Response:
    """Run a form's action; a refusal shows the incident again with the API's words."""
    form = await checked_form(request)
    reason = form.get("reason", "")[:500]
    try:
        if action in ("acknowledge", "resolve"):
            body = ActorBody(reason=reason or None)
            handler = api.acknowledge if action == "acknowledge" else api.resolve
            await handler(incident_id, body, services, principal)
            return back_to(request, f"/incidents/{incident_id}", f"{action.capitalize()}d.")
        mitigation = form.get("mitigation", "")
        actor = acting(principal, None)
        dry_run = form.get("dry_run") == "1"
        if action == "run":
            result = await services.executor.run(
                incident_id, mitigation, actor, dry_run=dry_run, reason=reason
            )
        else:
            result = await services.executor.undo(
                incident_id, mitigation, actor, dry_run=dry_run, reason=reason
            )
    except BallastError as err:
        code = STATUS_OF_ERROR.get(type(err), 409)
        return await _detail_page(request, services, incident_id, error=str(err), status_code=code)
    except HTTPException as err:
        return await _detail_page(
            request, services, incident_id, error=str(err.detail), status_code=err.status_code
        )
    message = f"{result.mitigation_id}: {result.state}. {result.message}"
    return back_to(request, f"/incidents/{incident_id}", message)


@router.post("/incidents/{incident_id}/acknowledge")
async def acknowledge(
    request: Request, incident_id: int, services: ServicesDep, principal: ResponderDep
) -> Response:
    """Acknowledge through the API's own handler."""
    return await _act(request, services, incident_id, "acknowledge", principal)


@router.post("/incidents/{incident_id}/resolve")
async def resolve(
    request: Request, incident_id: int, services: ServicesDep, principal: ResponderDep
) -> Response:
    """Resolve through the API's own handler."""
    return await _act(request, services, incident_id, "resolve", principal)


@router.post("/incidents/{incident_id}/run")
async def run(
    request: Request, incident_id: int, services: ServicesDep, principal: ResponderDep
) -> Response:
    """Run, approve (the same call by a second owner) or dry-run the form's mitigation."""
    return await _act(request, services, incident_id, "run", principal)


@router.post("/incidents/{incident_id}/undo")
async def undo(
    request: Request, incident_id: int, services: ServicesDep, principal: ResponderDep
) -> Response:
    """Undo (or dry-run the undo of) the form's mitigation, through the executor."""
    return await _act(request, services, incident_id, "undo", principal)
