"""Release gates over the API: a pipeline asks whether a version may ship; owners approve.

``POST /api/v1/gates/check`` (``automation`` or ``operator``) answers 200 with ``passed`` and
one line per reason; the decision is recorded either way. ``POST /api/v1/gates/approve``
(``responder``) records the approval of the authenticated person, who must own the service.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, status
from pydantic import BaseModel, ConfigDict, Field

from bot.api.changes import RecordableKind, Text
from bot.api.json_body import JsonBodyRoute
from bot.api.principals import require
from bot.api.services import Services, services_of
from bot.auth.principal import Principal
from bot.auth.roles import Role
from bot.gates.check import ReleaseGates
from bot.gates.evals import EvalReportError, scores_of
from bot.runbooks.schema import SLUG_PATTERN

router = APIRouter(prefix="/api/v1", tags=["gates"], route_class=JsonBodyRoute)


class GateCheckIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    service: str = Field(pattern=SLUG_PATTERN, max_length=63)
    kind: RecordableKind
    version: Text = Field(min_length=1, max_length=300)
    evals: dict[str, float] | None = Field(
        default=None, description="Scores by metric name (or send the report itself)."
    )
    report: dict[str, Any] | None = Field(
        default=None,
        description='An evaluation report: {"metrics": {...}} or promptfoo\'s JSON output.',
    )


class GateApproveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    service: str = Field(pattern=SLUG_PATTERN, max_length=63)
    kind: RecordableKind
    version: Text = Field(min_length=1, max_length=300)


class GateCheckOut(BaseModel):
    passed: bool
    decision: str  # "pass" or "blocked"
    reasons: list[str]
    checked: list[str]
    scores: dict[str, float]
    approvals: list[str]
    decision_id: int


class GateApprovals(BaseModel):
    service: str
    kind: str
    version: str
    approvals: list[str]


CheckerDep = Annotated[Principal, Depends(require(Role.AUTOMATION, Role.OPERATOR))]
ResponderDep = Annotated[Principal, Depends(require(Role.RESPONDER))]


def gates_of(services: Services) -> ReleaseGates:
    if services.gates is None:  # built by bot.app; absent only in hand-built test services
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "release gates are not set up")
    return services.gates


@router.post("/gates/check", response_model=GateCheckOut)
async def check_gate(body: GateCheckIn, request: Request, principal: CheckerDep) -> GateCheckOut:
    """May ``version`` of this kind of change to ``service`` ship now? Recorded either way."""
    if body.evals is not None and body.report is not None:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "send evals or report, not both")
    scores: dict[str, float] | None = body.evals
    if body.report is not None:
        try:
            scores = scores_of(body.report)
        except EvalReportError as err:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"report: {err}") from None
    result = await gates_of(services_of(request)).check(
        body.service, body.kind, body.version, scores, by=principal.name
    )
    return GateCheckOut(
        passed=result.passed,
        decision="pass" if result.passed else "blocked",
        reasons=result.reasons,
        checked=result.checked,
        scores=result.scores,
        approvals=result.approvals,
        decision_id=result.decision_id,
    )


@router.post("/gates/approve", response_model=GateApprovals)
async def approve_gate(
    body: GateApproveIn, request: Request, principal: ResponderDep
) -> GateApprovals:
    """An owner approves releasing ``version``; the same person twice counts once."""
    if principal.person is None:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"{principal.name} is not a person: approvals are given by people (a named token "
            "with a slack_user, OIDC or the trusted proxy)",
        )
    approvals = await gates_of(services_of(request)).approve(
        body.service, body.kind, body.version, principal.person
    )
    return GateApprovals(
        service=body.service, kind=body.kind.value, version=body.version, approvals=approvals
    )
