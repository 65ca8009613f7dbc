"""What people do to incidents (acknowledge, resolve), shared by the API, CLI and Slack.

Each operation is idempotent: acknowledging an acknowledged incident, or resolving a resolved
one, changes nothing and writes nothing, so a retried request is harmless.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot.incidents.actors import Actor, as_actor
from bot.incidents.lifecycle import IncidentStatus, check_transition
from bot.incidents.phases import phase_durations
from bot.incidents.timeline import TimelineKind
from bot.store import incidents as repo
from bot.store.tables import Incident


async def acknowledge(
    session: AsyncSession, incident_id: int, who: Actor | str, now: datetime
) -> bool:
    """Mark that a human owns the incident. Returns whether anything changed."""
    actor = as_actor(who)
    incident = await repo.get(session, incident_id, lock=True)
    status = IncidentStatus(incident.status)
    if incident.acknowledged_at is not None:
        return False
    if status is IncidentStatus.TRIGGERED:
        check_transition(status, IncidentStatus.ACKNOWLEDGED)
        incident.status = IncidentStatus.ACKNOWLEDGED.value
    elif status is IncidentStatus.RESOLVED:
        check_transition(status, IncidentStatus.ACKNOWLEDGED)  # raises: resolved is final here
    incident.acknowledged_at = now
    incident.acknowledged_by = actor.name
    incident.updated_at = now
    repo.append_timeline(
        session,
        incident.id,
        at=now,
        actor=actor.name,
        kind=TimelineKind.ACKNOWLEDGED,
        summary=f"Acknowledged by {actor.name}",
        details={"previous_status": status.value, "auth": actor.audit()},
    )
    return True


async def resolve(
    session: AsyncSession, incident_id: int, who: Actor | str, now: datetime, reason: str = ""
) -> bool:
    """Resolve by hand. Returns whether anything changed."""
    actor = as_actor(who)
    incident = await repo.get(session, incident_id, lock=True)
    if incident.status == IncidentStatus.RESOLVED.value:
        return False
    firing = incident.firing_count
    note = f"; {firing} alert(s) still firing" if firing else ""
    mark_resolved(
        session,
        incident,
        now,
        actor=actor.name,
        reason=(reason or f"by {actor.name}") + note,
        auth=actor.audit(),
    )
    return True


async def comment(
    session: AsyncSession, incident_id: int, who: Actor | str, now: datetime, text: str
) -> None:
    """Add a person's note to the incident's record (also once it is resolved: the
    postmortem reads it)."""
    actor = as_actor(who)
    incident = await repo.get(session, incident_id)
    repo.append_timeline(
        session,
        incident.id,
        at=now,
        actor=actor.name,
        kind=TimelineKind.COMMENT,
        summary=text,
        details={"auth": actor.audit()},
    )


def mark_resolved(
    session: AsyncSession,
    incident: Incident,
    now: datetime,
    *,
    actor: str,
    reason: str,
    auth: dict[str, object] | None = None,
) -> None:
    """Close the incident and record how long each phase took."""
    check_transition(IncidentStatus(incident.status), IncidentStatus.RESOLVED)
    incident.status = IncidentStatus.RESOLVED.value
    incident.open_key = None
    incident.resolved_at = now
    incident.resolved_by = actor
    incident.updated_at = now
    phases = {name: value.total_seconds() for name, value in phase_durations(incident).items()}
    repo.append_timeline(
        session,
        incident.id,
        at=now,
        actor=actor,
        kind=TimelineKind.RESOLVED,
        summary=f"Resolved: {reason}",
        details={"phases_seconds": phases, **({"auth": auth} if auth else {})},
    )
