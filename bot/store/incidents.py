"""Queries and writes for incidents, their alerts and their timeline.

Only this module and the inbox write SQL; the engine and the API speak in these functions.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    bindparam,
    func,
    insert,
    literal,
    select,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession

from bot.errors import NotFoundError
from bot.intake.alert import AlertStatus
from bot.store.tables import Incident, IncidentAlert, TimelineEntry, table_of

# The statements of the mitigation path, built once: building a SELECT costs more CPU than
# running it (SQLAlchemy's coercions, 0.2-0.4 ms here), and the path from alert to mitigation
# runs a few dozen (issue 16). Their parameters are bound at execution.
_GET = select(Incident).where(Incident.id == bindparam("incident_id"))
_GET_LOCKED = _GET.with_for_update()

# What a message reads of a storm incident's tens of thousands of alerts (migration 0015): for
# each status, its first ids, one range of the index (incident_id, status, id) read in order.
# Each is a query of its own, with equality on both columns, so that neither database has a
# plan to choose: with a single ``ORDER BY``, SQLite (which keeps no statistics) and PostgreSQL
# (before autovacuum has seen a new storm incident) sorted every alert of the incident.
_FIRING_FIRST = sorted(AlertStatus, key=lambda status: status is not AlertStatus.FIRING)


def _first_ids(status: AlertStatus, limit: Any) -> Select[int]:
    return (
        select(IncidentAlert.id)
        .where(
            IncidentAlert.incident_id == bindparam("incident_id"),
            IncidentAlert.status == status.value,
        )
        .order_by(IncidentAlert.id)
        .limit(limit)
    )


_FIRST_ALERT = (
    select(IncidentAlert)
    .where(IncidentAlert.id.in_([_first_ids(s, 1).scalar_subquery() for s in _FIRING_FIRST]))
    .order_by(IncidentAlert.id)
    .limit(1)
)
_SAMPLE_LIMIT = bindparam("limit", type_=Integer)
_SAMPLE_IDS = union_all(
    *(
        select(first.c.id, literal(rank).label("rank"))
        for rank, first in enumerate(
            _first_ids(status, _SAMPLE_LIMIT).subquery() for status in _FIRING_FIRST
        )
    )
).subquery()
_ALERTS_SAMPLE = (
    select(IncidentAlert)
    .join(_SAMPLE_IDS, _SAMPLE_IDS.c.id == IncidentAlert.id)
    .order_by(_SAMPLE_IDS.c.rank, IncidentAlert.id)
    .limit(_SAMPLE_LIMIT)
)


async def find_open(session: AsyncSession, key: str, *, lock: bool = False) -> Incident | None:
    query = select(Incident).where(Incident.open_key == key)
    if lock and session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    return await session.scalar(query)


async def latest_for_key(session: AsyncSession, key: str) -> Incident | None:
    """The most recent incident for a key, open or not (to re-open a flapping one)."""
    return await session.scalar(
        select(Incident).where(Incident.key == key).order_by(Incident.id.desc()).limit(1)
    )


async def latest_holding(
    session: AsyncSession, key: str, fingerprint: str, *, lock: bool = False
) -> Incident | None:
    """The most recent incident for ``key`` that holds the alert ``fingerprint``, open or not.

    Where a resolve goes when no incident is open for its key: the incident it belongs to may
    have been resolved by hand before the alert ended.
    """
    query = (
        select(Incident)
        .join(IncidentAlert, IncidentAlert.incident_id == Incident.id)
        .where(Incident.key == key, IncidentAlert.fingerprint == fingerprint)
        .order_by(Incident.id.desc())
        .limit(1)
    )
    if lock and session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(of=Incident)
    return await session.scalar(query)


async def get(session: AsyncSession, incident_id: int, *, lock: bool = False) -> Incident:
    locking = lock and session.get_bind().dialect.name == "postgresql"
    incident = await session.scalar(_GET_LOCKED if locking else _GET, {"incident_id": incident_id})
    if incident is None:
        raise NotFoundError(f"incident {incident_id} does not exist")
    return incident


async def get_many(session: AsyncSession, incident_ids: Sequence[int]) -> dict[int, Incident]:
    """The incidents of ``incident_ids`` that exist, by id: one query for a batch's changes."""
    if not incident_ids:
        return {}
    query = select(Incident).where(Incident.id.in_(sorted(set(incident_ids))))
    return {incident.id: incident for incident in await session.scalars(query)}


async def list_incidents(
    session: AsyncSession,
    *,
    statuses: Sequence[str] = (),
    service: str | None = None,
    runbook_id: str | None = None,
    limit: int = 100,
    before_id: int | None = None,
) -> Sequence[Incident]:
    """Newest first; ``statuses`` are ``IncidentStatus`` values (the store sits below
    ``bot.incidents`` and takes them as the strings they are)."""
    query = select(Incident).order_by(Incident.id.desc()).limit(limit)
    if statuses:
        query = query.where(Incident.status.in_([str(s) for s in statuses]))
    if service is not None:
        query = query.where(Incident.service == service)
    if runbook_id is not None:
        query = query.where(Incident.runbook_id == runbook_id)
    if before_id is not None:
        query = query.where(Incident.id < before_id)
    return (await session.scalars(query)).all()


async def count_by_status(session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(select(Incident.status, func.count()).group_by(Incident.status))
    return {status: int(count) for status, count in rows}


async def alerts_of(session: AsyncSession, incident_id: int) -> Sequence[IncidentAlert]:
    return (
        await session.scalars(
            select(IncidentAlert)
            .where(IncidentAlert.incident_id == incident_id)
            .order_by(IncidentAlert.id)
        )
    ).all()


async def alerts_sample(
    session: AsyncSession, incident_id: int, limit: int
) -> Sequence[IncidentAlert]:
    """At most ``limit`` of the incident's alerts: its first (what params and links are
    rendered from, as for the executor), then firing ones before the others, each in arrival
    order. What a message shows of a storm incident without reading its thousands."""
    first = await first_alert_of(session, incident_id)
    if first is None or limit < 1:
        return []
    rest = await session.scalars(_ALERTS_SAMPLE, {"incident_id": incident_id, "limit": limit})
    return [first, *(alert for alert in rest if alert.id != first.id)][:limit]


async def first_alert_of(session: AsyncSession, incident_id: int) -> IncidentAlert | None:
    """The incident's first alert (lowest id), without reading the others: a storm incident may
    hold thousands."""
    return await session.scalar(_FIRST_ALERT, {"incident_id": incident_id})


async def alert_of(
    session: AsyncSession, incident_id: int, fingerprint: str
) -> IncidentAlert | None:
    return await session.scalar(
        select(IncidentAlert).where(
            IncidentAlert.incident_id == incident_id, IncidentAlert.fingerprint == fingerprint
        )
    )


async def timeline_of(
    session: AsyncSession, incident_id: int, *, kinds: Iterable[str] | None = None
) -> Sequence[TimelineEntry]:
    """The incident's timeline in order; with ``kinds``, only entries of those kinds.

    A storm incident has an entry per alert (tens of thousands): whoever looks for its own
    entries (a verdict, a scorecard, an escalation) names their kinds, so the database finds
    them through ``(incident_id, kind, id)`` instead of every entry being read into objects
    (about a second of the event loop and over 100 MB per read at 50,000 alerts).
    """
    if kinds is None:
        return (await session.scalars(_TIMELINE, {"incident_id": incident_id})).all()
    wanted = sorted({str(kind) for kind in kinds})
    if not wanted:
        return []
    entries = await session.scalars(
        _TIMELINE_OF_KINDS, {"incident_id": incident_id, "kinds": wanted}
    )
    return sorted(entries, key=lambda entry: entry.id)


async def newest_of_kinds(
    session: AsyncSession, incident_id: int, kinds: Iterable[str], limit: int
) -> tuple[list[TimelineEntry], int]:
    """The newest ``limit`` entries of ``kinds`` in order, and how many entries of those kinds
    the incident has. Each kind is read backwards through ``(incident_id, kind, id)``, with
    equality on both columns (no plan to choose, no sort: see ``_TIMELINE_OF_KINDS``), and
    counted from the same index: a storm incident's page reads a few hundred of its tens of
    thousands of per-alert entries."""
    newest: list[TimelineEntry] = []
    total = 0
    for kind in sorted({str(kind) for kind in kinds}):
        params = {"incident_id": incident_id, "kind": kind}
        total += int(await session.scalar(_COUNT_OF_KIND, params) or 0)
        if limit > 0:
            newest += (await session.scalars(_NEWEST_OF_KIND, {**params, "limit": limit})).all()
    newest.sort(key=lambda entry: entry.id)
    return newest[-limit:] if limit > 0 else [], total


async def alert_starts_per_minute(
    session: AsyncSession, incident_id: int
) -> list[tuple[datetime, int]]:
    """How many of the incident's alerts started in each minute, in order (a chart of a storm
    incident's alerts, counted by the database: reading 50,000 start times into Python took
    200 ms)."""
    if session.get_bind().dialect.name == "postgresql":
        rows = await session.execute(_STARTS_PER_MINUTE_PG, {"incident_id": incident_id})
        return [(minute.astimezone(UTC), int(count)) for minute, count in rows]
    # SQLite keeps the UTC time as text; strftime reads it.
    rows = await session.execute(_STARTS_PER_MINUTE_SQLITE, {"incident_id": incident_id})
    return [
        (datetime.strptime(minute, "%Y-%m-%d %H:%M").replace(tzinfo=UTC), int(count))
        for minute, count in rows
    ]


async def newest_timeline_id(session: AsyncSession, incident_id: int) -> int | None:
    """The id of the incident's newest timeline entry: what changes whenever an entry is
    added, read from the index without counting them."""
    newest = await session.scalar(_NEWEST_TIMELINE_ID, {"incident_id": incident_id})
    return None if newest is None else int(newest)


_TIMELINE = (
    select(TimelineEntry)
    .where(TimelineEntry.incident_id == bindparam("incident_id"))
    .order_by(TimelineEntry.id)
)
# Unordered: put in order here, they are few. With ``ORDER BY id`` and more than one kind,
# SQLite (which keeps no statistics) read every entry of the incident through (incident_id,
# id) to spare itself the sort, instead of a seek per kind in (incident_id, kind, id).
_TIMELINE_OF_KINDS = select(TimelineEntry).where(
    TimelineEntry.incident_id == bindparam("incident_id"),
    TimelineEntry.kind.in_(bindparam("kinds", expanding=True)),
)
_OF_KIND = (
    TimelineEntry.incident_id == bindparam("incident_id"),
    TimelineEntry.kind == bindparam("kind"),
)
_NEWEST_OF_KIND = (
    select(TimelineEntry)
    .where(*_OF_KIND)
    .order_by(TimelineEntry.id.desc())
    .limit(bindparam("limit", type_=Integer))
)
_COUNT_OF_KIND = select(func.count(TimelineEntry.id)).where(*_OF_KIND)


def _per_minute(minute: ColumnElement[Any]) -> Select[tuple[Any, int]]:
    return (
        select(minute, func.count())
        .where(IncidentAlert.incident_id == bindparam("incident_id"))
        .group_by(minute)
        .order_by(minute)
    )


_STARTS_PER_MINUTE_PG = _per_minute(func.date_trunc("minute", IncidentAlert.starts_at))
_STARTS_PER_MINUTE_SQLITE = _per_minute(func.strftime("%Y-%m-%d %H:%M", IncidentAlert.starts_at))
_NEWEST_TIMELINE_ID = select(func.max(TimelineEntry.id)).where(
    TimelineEntry.incident_id == bindparam("incident_id")
)


def append_timeline(
    session: AsyncSession,
    incident_id: int,
    *,
    at: datetime,
    actor: str,
    kind: str,
    summary: str,
    details: dict[str, Any] | None = None,
) -> TimelineEntry:
    entry = TimelineEntry(
        incident_id=incident_id,
        at=at,
        actor=actor,
        kind=kind,
        summary=summary,
        details=details or {},
    )
    session.add(entry)
    return entry


INSERT_TIMELINE = insert(table_of(TimelineEntry))


async def insert_timeline(
    session: AsyncSession,
    incident_id: int,
    *,
    at: datetime,
    actor: str,
    kind: str,
    summary: str,
    details: dict[str, Any] | None = None,
) -> None:
    """:func:`append_timeline` as one INSERT now, built once (no unit of work: the path from
    an alert to its first mitigation). Through the session, not its connection: its autoflush
    (SQLAlchemy's, before every statement) writes the entries it holds first, so the timeline
    keeps the order in which they were made."""
    entry = timeline_row(
        incident_id, at=at, actor=actor, kind=kind, summary=summary, details=details
    )
    await insert_timeline_row(session, entry)


async def insert_timeline_row(session: AsyncSession, entry: dict[str, Any]) -> None:
    """Write an entry made by :func:`timeline_row` (as :func:`insert_timeline`)."""
    await session.execute(INSERT_TIMELINE, entry)


def timeline_row(
    incident_id: int,
    *,
    at: datetime,
    actor: str,
    kind: str,
    summary: str,
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A timeline entry as :data:`INSERT_TIMELINE`'s parameters (for a statement that writes
    it with another row: ``bot.store.executions.insert_generation``)."""
    return {
        "incident_id": incident_id,
        "at": at,
        "actor": actor,
        "kind": kind,
        "summary": summary,
        "details": details or {},
    }
