"""The audit trail of mitigations, written into the incident timeline.

Every preview, request, approval, refusal, apply, undo and failure is one entry, with the
actor, the before/after values and what the backend answered.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from actions.context import ActionOutcome
from bot.incidents.lifecycle import IncidentStatus
from bot.matching.runbook import Mitigation
from bot.store import incidents as repo
from bot.store.tables import Execution, Incident


class MitigationEvent(StrEnum):
    DRY_RUN = "mitigation_dry_run"
    REQUESTED = "mitigation_requested"
    APPROVED = "mitigation_approved"
    REFUSED = "mitigation_refused"
    APPLIED = "mitigation_applied"
    FAILED = "mitigation_failed"
    UNDONE = "mitigation_undone"
    UNDO_FAILED = "mitigation_undo_failed"
    DONE_MANUALLY = "mitigation_done_manually"


def _entry(
    session: AsyncSession,
    incident_id: int,
    at: datetime,
    actor: str,
    kind: MitigationEvent,
    summary: str,
    details: dict[str, Any],
) -> None:
    repo.append_timeline(
        session, incident_id, at=at, actor=actor, kind=kind, summary=summary, details=details
    )


def refused(
    session: AsyncSession, incident_id: int, at: datetime, actor: str, what: str, why: str
) -> None:
    _entry(
        session,
        incident_id,
        at,
        actor,
        MitigationEvent.REFUSED,
        f"Refused {actor}: {what}",
        {"reason": why},
    )


def dry_run(
    session: AsyncSession,
    incident_id: int,
    at: datetime,
    actor: str,
    mitigation: Mitigation,
    outcome: ActionOutcome,
) -> None:
    _entry(
        session,
        incident_id,
        at,
        actor,
        MitigationEvent.DRY_RUN,
        f"Dry run of {mitigation.id}: {outcome.summary}",
        {"mitigation_id": mitigation.id, **asdict(outcome)},
    )


def manual(
    session: AsyncSession, incident_id: int, at: datetime, actor: str, mitigation: Mitigation
) -> None:
    _entry(
        session,
        incident_id,
        at,
        actor,
        MitigationEvent.DONE_MANUALLY,
        f"{mitigation.title}: done by hand by {actor}",
        {"mitigation_id": mitigation.id},
    )


def approved(
    session: AsyncSession,
    incident_id: int,
    at: datetime,
    actor: str,
    mitigation: Mitigation,
    execution: Execution,
    final: bool,
) -> None:
    approvals = list(execution.approvals.get("actors", []))
    first = len(approvals) <= 1 and actor == execution.requested_by
    kind = MitigationEvent.REQUESTED if first and not final else MitigationEvent.APPROVED
    verb = "requested" if kind is MitigationEvent.REQUESTED else "approved"
    then = "; applying" if final else "; waiting for another approval"
    _entry(
        session,
        incident_id,
        at,
        actor,
        kind,
        f"{mitigation.title} {verb} by {actor} ({execution.risk} risk){then}",
        {
            "mitigation_id": mitigation.id,
            "action": execution.action,
            "params": execution.params,
            "risk": execution.risk,
            "requested_by": execution.requested_by,
            "approvals": approvals,
            "idempotency_key": execution.idempotency_key,
        },
    )


def applied(
    session: AsyncSession,
    incident: Incident,
    at: datetime,
    actor: str,
    mitigation: Mitigation,
    execution: Execution,
    outcome: ActionOutcome,
) -> None:
    _entry(
        session,
        incident.id,
        at,
        actor,
        MitigationEvent.APPLIED,
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
            actor=actor,
            kind="status_changed",
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
        MitigationEvent.FAILED,
        f"{mitigation.title} failed: {message}",
        {"mitigation_id": mitigation.id, "attempts": execution.attempts, "error": message},
    )


def undone(
    session: AsyncSession,
    incident_id: int,
    at: datetime,
    actor: str,
    mitigation: Mitigation,
    outcome: ActionOutcome,
) -> None:
    _entry(
        session,
        incident_id,
        at,
        actor,
        MitigationEvent.UNDONE,
        f"Undid {mitigation.title}: {outcome.summary}",
        {"mitigation_id": mitigation.id, **asdict(outcome)},
    )


def undo_failed(
    session: AsyncSession,
    incident_id: int,
    at: datetime,
    actor: str,
    mitigation: Mitigation,
    message: str,
) -> None:
    _entry(
        session,
        incident_id,
        at,
        actor,
        MitigationEvent.UNDO_FAILED,
        f"Undo of {mitigation.title} failed: {message}",
        {"mitigation_id": mitigation.id, "error": message},
    )
