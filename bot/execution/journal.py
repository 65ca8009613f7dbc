"""The audit trail of mitigations, written into the incident timeline.

Every preview, request, approval, refusal, apply, undo and failure is one entry, with the
actor, the before/after values and what the backend answered.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from actions.context import ActionOutcome
from bot.incidents.actors import Actor
from bot.incidents.lifecycle import IncidentStatus
from bot.incidents.timeline import TimelineKind
from bot.runbooks.schema import Mitigation
from bot.store import incidents as repo
from bot.store.tables import Execution, Incident


def _entry(
    session: AsyncSession,
    incident_id: int,
    at: datetime,
    actor: Actor | str,
    kind: TimelineKind,
    summary: str,
    details: dict[str, Any],
) -> None:
    repo.append_timeline(
        session,
        incident_id,
        at=at,
        actor=actor if isinstance(actor, str) else actor.name,
        kind=kind,
        summary=summary,
        details=details if isinstance(actor, str) else {**details, "auth": actor.audit()},
    )


def refused(
    session: AsyncSession, incident_id: int, at: datetime, actor: Actor, what: str, why: str
) -> None:
    _entry(
        session,
        incident_id,
        at,
        actor,
        TimelineKind.MITIGATION_REFUSED,
        f"Refused {actor.name}: {what}",
        {"reason": why},
    )


def dry_run(
    session: AsyncSession,
    incident_id: int,
    at: datetime,
    actor: Actor,
    mitigation: Mitigation,
    outcome: ActionOutcome,
) -> None:
    _entry(
        session,
        incident_id,
        at,
        actor,
        TimelineKind.MITIGATION_DRY_RUN,
        f"Dry run of {mitigation.id}: {outcome.summary}",
        {"mitigation_id": mitigation.id, **asdict(outcome)},
    )


def manual(
    session: AsyncSession, incident_id: int, at: datetime, actor: Actor, mitigation: Mitigation
) -> None:
    _entry(
        session,
        incident_id,
        at,
        actor,
        TimelineKind.MITIGATION_DONE_MANUALLY,
        f"{mitigation.title}: done by hand by {actor.name}",
        {"mitigation_id": mitigation.id},
    )


def approved(
    incident_id: int,
    at: datetime,
    actor: Actor,
    mitigation: Mitigation,
    execution: Execution,
    final: bool,
) -> dict[str, Any]:
    """The timeline entry of a claim's approval (or request), as parameters for the
    statement that writes it (``bot.store.executions.insert_generation``, or
    :func:`recorded`)."""
    approvals = list(execution.approvals.get("actors", []))
    first = len(approvals) <= 1 and actor.name == execution.requested_by
    kind = (
        TimelineKind.MITIGATION_REQUESTED
        if first and not final
        else TimelineKind.MITIGATION_APPROVED
    )
    verb = "requested" if kind is TimelineKind.MITIGATION_REQUESTED else "approved"
    then = "; applying" if final else "; waiting for another approval"
    # What was approved, exactly: the change planned when it was requested.
    what = f": {execution.plan['text']}" if execution.plan else ""
    return repo.timeline_row(
        incident_id,
        at=at,
        actor=actor.name,
        kind=kind,
        summary=f"{mitigation.title} {verb} by {actor.name} ({execution.risk} risk){then}{what}",
        details={
            "plan": execution.plan,
            "mitigation_id": mitigation.id,
            "action": execution.action,
            "params": execution.params,
            "risk": execution.risk,
            "requested_by": execution.requested_by,
            "approvals": approvals,
            "idempotency_key": execution.idempotency_key,
            "auth": actor.audit(),
        },
    )


async def recorded(session: AsyncSession, entry: dict[str, Any]) -> None:
    """Write an entry made by :func:`approved` on its own: one INSERT now (not the unit of
    work's)."""
    await repo.insert_timeline_row(session, entry)


def applied(
    session: AsyncSession,
    incident: Incident,
    at: datetime,
    actor: Actor,
    mitigation: Mitigation,
    execution: Execution,
    outcome: ActionOutcome,
) -> None:
    _entry(
        session,
        incident.id,
        at,
        actor,
        TimelineKind.MITIGATION_APPLIED,
        f"{mitigation.title}: {outcome.summary}",
        {
            "mitigation_id": mitigation.id,
            "action": execution.action,
            "requested_by": execution.requested_by,
            "approvals": execution.approvals.get("actors", []),
            "attempts": execution.attempts,
            "idempotency_key": execution.idempotency_key,
            **asdict(outcome),
        },
    )
    status = IncidentStatus(incident.status)
    if status in (IncidentStatus.TRIGGERED, IncidentStatus.ACKNOWLEDGED):
        incident.status = IncidentStatus.MITIGATING.value
        repo.append_timeline(
            session,
            incident.id,
            at=at,
            actor=actor.name,
            kind=TimelineKind.STATUS_CHANGED,
            summary=f"{status.value} → mitigating",
            details={},
        )
    if incident.mitigated_at is None:
        incident.mitigated_at = at
    incident.updated_at = at


def failed(
    session: AsyncSession,
    incident_id: int,
    at: datetime,
    mitigation: Mitigation,
    execution: Execution,
    message: str,
) -> None:
    _entry(
        session,
        incident_id,
        at,
        execution.requested_by,
        TimelineKind.MITIGATION_FAILED,
        f"{mitigation.title} failed: {message}",
        {"mitigation_id": mitigation.id, "attempts": execution.attempts, "error": message},
    )


def abandoned(session: AsyncSession, execution: Execution, at: datetime, message: str) -> None:
    """An execution taken over that could not be finished (its mitigation is gone)."""
    _entry(
        session,
        execution.incident_id,
        at,
        execution.requested_by,
        TimelineKind.MITIGATION_FAILED,
        f"{execution.mitigation_id} failed: {message}",
        {
            "mitigation_id": execution.mitigation_id,
            "attempts": execution.attempts,
            "error": message,
        },
    )


def undone(
    session: AsyncSession,
    incident_id: int,
    at: datetime,
    actor: Actor,
    mitigation: Mitigation,
    outcome: ActionOutcome,
) -> None:
    _entry(
        session,
        incident_id,
        at,
        actor,
        TimelineKind.MITIGATION_UNDONE,
        f"Undid {mitigation.title}: {outcome.summary}",
        {"mitigation_id": mitigation.id, **asdict(outcome)},
    )


def undo_failed(
    session: AsyncSession,
    incident_id: int,
    at: datetime,
    actor: Actor,
    mitigation: Mitigation,
    message: str,
) -> None:
    _entry(
        session,
        incident_id,
        at,
        actor,
        TimelineKind.MITIGATION_UNDO_FAILED,
        f"Undo of {mitigation.title} failed: {message}",
        {"mitigation_id": mitigation.id, "error": message},
    )
