"""Run and undo mitigations over the API: the same policy as a Slack click.

The authenticated person must be a runbook owner; high-risk actions need two different owners (the
first call requests, the second approves); replays change nothing.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from bot.api.json_body import JsonBodyRoute
from bot.api.principals import acting, require
from bot.api.schemas import ACTOR_DESCRIPTION, ActorText, IncidentIdPath, ReasonText
from bot.api.services import Services, services_of
from bot.auth.principal import Principal
from bot.auth.roles import Role
from bot.execution.results import ExecutionState, RunResult

router = APIRouter(prefix="/api/v1/incidents", tags=["mitigations"], route_class=JsonBodyRoute)

ServicesDep = Annotated[Services, Depends(services_of)]
ResponderDep = Annotated[Principal, Depends(require(Role.RESPONDER))]


class MitigationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    actor: ActorText | None = Field(default=None, description=ACTOR_DESCRIPTION)
    reason: ReasonText = ""
    dry_run: bool = Field(default=False, description="Say what would happen; change nothing.")


class MitigationResponse(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    incident_id: int
    mitigation_id: str
    state: str
    message: str
    risk: str | None
    approvals: list[str]
    approvals_needed: int
    attempts: int
    changed: bool
    outcome: dict[str, Any] | None
    plan: dict[str, Any] | None = Field(
        default=None,
        description=(
            "The exact control change requested (key, before, after, and for `to: previous` "
            "where the target was found, who shipped what and when): what approvers approve."
        ),
    )


def _respond(result: RunResult) -> JSONResponse:
    code = 202 if result.state == ExecutionState.AWAITING_APPROVAL else 200
    return JSONResponse(
        MitigationResponse.model_validate(result).model_dump(mode="json"), status_code=code
    )


@router.post(
    "/{incident_id}/mitigations/{mitigation_id}/run",
    response_model=MitigationResponse,
    responses={
        202: {"description": "Recorded; waiting for another owner's approval"},
        401: {"description": "Not authenticated"},
        403: {"description": "Not an owner, already approved, or claiming someone else"},
        404: {"description": "No such incident or mitigation"},
        409: {"description": "The incident or mitigation state forbids it"},
    },
)
async def run_mitigation(
    incident_id: IncidentIdPath,
    mitigation_id: str,
    body: MitigationRequest,
    services: ServicesDep,
    principal: ResponderDep,
) -> JSONResponse:
    """Request, approve or apply (with enough approvals) one of the runbook's mitigations."""
    actor = acting(principal, body.actor)
    result = await services.executor.run(
        incident_id, mitigation_id, actor, dry_run=body.dry_run, reason=body.reason
    )
    return _respond(result)


@router.post(
    "/{incident_id}/mitigations/{mitigation_id}/undo",
    response_model=MitigationResponse,
)
async def undo_mitigation(
    incident_id: IncidentIdPath,
    mitigation_id: str,
    body: MitigationRequest,
    services: ServicesDep,
    principal: ResponderDep,
) -> JSONResponse:
    """Restore what the mitigation changed (its recorded before-values)."""
    actor = acting(principal, body.actor)
    result = await services.executor.undo(
        incident_id, mitigation_id, actor, dry_run=body.dry_run, reason=body.reason
    )
    return _respond(result)
