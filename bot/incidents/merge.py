"""One alert merged into its incident: the alert row, the counts, the timeline entry.

Order-tolerant: for one fingerprint a newer ``startsAt`` replaces an older one and never the
other way round, and a resolve of an older occurrence changes nothing. Runs once per stored
alert inside the engine's batch transaction (:mod:`bot.incidents.engine`), so it adds no query
beyond the alert's own lookup and writes.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot.incidents.changes import ChangeKind, IncidentChange
from bot.incidents.outcome import AlertOutcome
from bot.incidents.timeline import TimelineKind
from bot.intake.alert import AlertStatus
from bot.store import incidents as repo
from bot.store.tables import InboxAlert, Incident, IncidentAlert


async def merge_alert(
    session: AsyncSession,
    incident: Incident,
    row: InboxAlert,
    now: datetime,
    change: IncidentChange,
) -> AlertOutcome:
    """Add or update the incident's alert for ``row``; returns what happened to it.

    The incident's counts move by exactly this alert's transition. That is exact because
    the incident row is locked for the whole transaction (``FOR UPDATE`` on PostgreSQL;
    SQLite has one writer) and only this function changes an incident's alerts; recounting
    every alert of the incident per stored alert made a storm into one incident quadratic.
    """
    existing = await repo.alert_of(session, incident.id, row.fingerprint)
    name = row.labels.get("alertname", "alert")
    if existing is None:
        incident.alert_count += 1
        if row.status == AlertStatus.FIRING:
            incident.firing_count += 1
        session.add(
            IncidentAlert(
                incident_id=incident.id,
                fingerprint=row.fingerprint,
                status=row.status,
                starts_at=row.starts_at,
                ends_at=row.ends_at,
                labels=row.labels,
                annotations=row.annotations,
                generator_url=row.generator_url,
                source=row.source,
                first_seen_at=now,
                last_seen_at=now,
            )
        )
        kind = (
            TimelineKind.ALERT_FIRING
            if row.status == AlertStatus.FIRING
            else TimelineKind.ALERT_RESOLVED
        )
        _journal_alert(session, incident, row, now, kind, f"{name} {row.status}")
        change.kinds.add(ChangeKind.UPDATED)
        return AlertOutcome.NEW_ALERT
    if existing.status == AlertStatus.FIRING:
        # Still firing: a newer startsAt is a resend (generic senders without starts_at),
        # not a new occurrence; a resolve counts unless it is of an older occurrence.
        if row.status == AlertStatus.RESOLVED and row.starts_at >= existing.starts_at:
            incident.firing_count -= 1
            _overwrite(existing, row, now)
            _journal_alert(
                session, incident, row, now, TimelineKind.ALERT_RESOLVED, f"{name} resolved"
            )
            change.kinds.add(ChangeKind.UPDATED)
            return AlertOutcome.RESOLVED
    elif row.status == AlertStatus.FIRING and row.starts_at > existing.starts_at:
        incident.firing_count += 1
        _overwrite(existing, row, now)
        _journal_alert(
            session, incident, row, now, TimelineKind.ALERT_REFIRING, f"{name} firing again"
        )
        change.kinds.add(ChangeKind.UPDATED)
        return AlertOutcome.NEW_OCCURRENCE
    existing.last_seen_at = now
    return AlertOutcome.UNCHANGED


def _overwrite(existing: IncidentAlert, row: InboxAlert, now: datetime) -> None:
    existing.status = row.status
    existing.starts_at = row.starts_at
    existing.ends_at = row.ends_at
    existing.labels = row.labels
    existing.annotations = row.annotations
    existing.generator_url = row.generator_url
    existing.last_seen_at = now


def _journal_alert(
    session: AsyncSession,
    incident: Incident,
    row: InboxAlert,
    now: datetime,
    kind: TimelineKind,
    summary: str,
) -> None:
    repo.append_timeline(
        session,
        incident.id,
        at=now,
        actor=row.source,
        kind=kind,
        summary=summary,
        details={
            "fingerprint": row.fingerprint,
            "starts_at": row.starts_at.isoformat(),
            "ends_at": row.ends_at.isoformat() if row.ends_at else None,
            "labels": row.labels,
        },
    )
