"""Set-based reads and writes for one batch of the incident engine.

The batched engine (:mod:`bot.incidents.batch`) reads everything a batch of stored alerts
touches in a few statements (the claim, which also tells which firing alerts are stale; the
incidents of the batch's keys locked in key order; their alerts), works out every change in
memory, and writes them back in a few more (one UPDATE of changed incidents, one INSERT of new
ones, one each for new and changed incident alerts, the timeline, escalation timers and the
inbox outcomes). Per stored alert it costs no statement of its own, where the per-alert path
cost five to eight.

The statements are Core, on the session's connection: the rows are plain values here, and
SQLAlchemy's ORM unit of work cost more per row than the database did.

Lock order (:mod:`bot.store.executions`): the batch locks incident rows only, all of them in one
``SELECT ... ORDER BY key, id FOR UPDATE`` (PostgreSQL locks in the sorted order, so two
replicas whose batches share keys take them in the same order), then writes the timeline
(key-share locks on incidents it already holds) and timers last.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from operator import attrgetter
from typing import Any, TypeVar

from sqlalchemy import (
    JSON,
    BigInteger,
    ColumnElement,
    String,
    and_,
    any_,
    bindparam,
    exists,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import TypeDecorator

from bot.store.driver_sql import DriverStatement, Rows, execute_together, insert_rows, update_rows
from bot.store.inbox import resolve_stored
from bot.store.inbox_sql import json_text
from bot.store.tables import InboxAlert, Incident, IncidentAlert, TimelineEntry, Timer, table_of

INBOX = table_of(InboxAlert)
INCIDENTS = table_of(Incident)
ALERTS = table_of(IncidentAlert)
TIMERS = table_of(Timer)
TIMELINE = table_of(TimelineEntry)


@dataclass(frozen=True, slots=True)
class ClaimedAlert:
    """A stored alert claimed by the engine: the inbox row's values, read once."""

    id: int
    source: str
    fingerprint: str
    status: str
    starts_at: datetime
    ends_at: datetime | None
    labels: dict[str, Any]
    annotations: dict[str, Any]
    generator_url: str | None
    truncated_alerts: int
    received_at: datetime
    traceparent: str | None = None  # the webhook's trace context (bot.telemetry)
    # A resolve of the same (fingerprint, startsAt) is stored: a firing row is then stale.
    resolve_stored: bool = False


_CLAIM_COLUMNS = (
    INBOX.c.id,
    INBOX.c.source,
    INBOX.c.fingerprint,
    INBOX.c.status,
    INBOX.c.starts_at,
    INBOX.c.ends_at,
    INBOX.c.labels,
    INBOX.c.annotations,
    INBOX.c.generator_url,
    INBOX.c.truncated_alerts,
    INBOX.c.received_at,
    INBOX.c.traceparent,
)


# The batch's statements are built once, their parameters bound at execution: building one
# costs more CPU than a small batch's rows (SQLAlchemy's coercions), and a new incident's
# alert goes through all of them alone (issue 16). Lists go in expanding parameters on SQLite;
# on PostgreSQL in one array parameter each (``= ANY(:list)``, ``unnest(:a, :b)``): an
# expanding list is rendered into the statement's text at every execution (CPU here), and
# every new length is a new text, which asyncpg prepares again (a round trip and PostgreSQL's
# parse and plan). The statements of each dialect are in a dict by dialect name.

_S = TypeVar("_S")


def _listed(column: ColumnElement[Any], name: str) -> ColumnElement[bool]:
    return column.in_(bindparam(name, expanding=True))


def _in_array(column: ColumnElement[Any], name: str) -> ColumnElement[bool]:
    return column == any_(bindparam(name, type_=postgresql.ARRAY(column.type)))


Member = Callable[[ColumnElement[Any], str], ColumnElement[bool]]


def _by_dialect(build: Callable[[Member], _S]) -> dict[str, _S]:
    return {"sqlite": build(_listed), "postgresql": build(_in_array)}


def _dialect(session: AsyncSession) -> str:
    return "postgresql" if session.get_bind().dialect.name == "postgresql" else "sqlite"


# The stale check rides on the claim: one lookup per claimed row in the inbox's unique key, not
# a statement (a round trip on PostgreSQL) of its own.
_RESOLVE_STORED = resolve_stored(INBOX).label("resolve_stored")
_CLAIM = (
    select(*_CLAIM_COLUMNS, _RESOLVE_STORED)
    .where(INBOX.c.processed_at.is_(None))
    .order_by(INBOX.c.id)
    .limit(bindparam("limit", type_=BigInteger))
)
_CLAIM_SKIP_LOCKED = _CLAIM.with_for_update(skip_locked=True, of=INBOX)
_LATEST_HOLDING = _by_dialect(
    lambda member: (
        select(INCIDENTS.c.key, ALERTS.c.fingerprint, func.max(INCIDENTS.c.id))
        .join(ALERTS, ALERTS.c.incident_id == INCIDENTS.c.id)
        .where(member(INCIDENTS.c.key, "keys"), member(ALERTS.c.fingerprint, "fingerprints"))
        .group_by(INCIDENTS.c.key, ALERTS.c.fingerprint)
    )
)
_TAKE_WRITE_LOCK = update(INBOX).where(INBOX.c.id == -1).values(outcome=None)


async def claim(session: AsyncSession, limit: int) -> list[ClaimedAlert]:
    """Unprocessed rows, oldest first, locked for this transaction (``SKIP LOCKED`` on
    PostgreSQL, so replicas never take the same row), each with whether a resolve of its
    (fingerprint, startsAt) is stored (what makes a firing row stale)."""
    query = _CLAIM_SKIP_LOCKED if session.get_bind().dialect.name == "postgresql" else _CLAIM
    connection = await session.connection()
    return [ClaimedAlert(*row) for row in await connection.execute(query, {"limit": limit})]


async def latest_holding(
    session: AsyncSession, wanted: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], int]:
    """For each (key, fingerprint): the id of the newest incident of the key that holds the
    alert, where one does (where a resolve goes when nothing is open for its key)."""
    pairs = set(wanted)
    if not pairs:
        return {}
    params = {
        "keys": sorted({key for key, _ in pairs}),
        "fingerprints": sorted({fp for _, fp in pairs}),
    }
    connection = await session.connection()
    return {
        (key, fp): int(incident_id)
        for key, fp, incident_id in await connection.execute(
            _LATEST_HOLDING[_dialect(session)], params
        )
        if (key, fp) in pairs
    }


async def take_write_lock(session: AsyncSession) -> None:
    """SQLite: begin the write transaction now (an UPDATE that changes nothing takes the write
    gate and SQLite's write lock), so what is read from here on stays true until the commit."""
    connection = await session.connection()
    await connection.execute(_TAKE_WRITE_LOCK)


@dataclass(slots=True, eq=False)
class IncidentState:
    """An incident as the batch works on it: loaded (``id`` set) or new (``id`` None until
    inserted). ``changed`` marks a loaded one that must be written back."""

    id: int | None
    key: str
    open_key: str | None
    runbook_id: str | None
    runbook_revision: str | None
    status: str
    title: str
    severity: str
    service: str | None
    group_labels: dict[str, Any]
    alert_count: int
    firing_count: int
    detected_at: datetime
    opened_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    mitigated_at: datetime | None
    resolved_at: datetime | None
    resolved_by: str | None
    reopen_count: int
    updated_at: datetime
    changed: bool = False

    @property
    def ident(self) -> int:
        assert self.id is not None, "the incident was not inserted yet"
        return self.id


_INCIDENT_FIELDS = (
    "key",
    "open_key",
    "runbook_id",
    "runbook_revision",
    "status",
    "title",
    "severity",
    "service",
    "group_labels",
    "alert_count",
    "firing_count",
    "detected_at",
    "opened_at",
    "acknowledged_at",
    "acknowledged_by",
    "mitigated_at",
    "resolved_at",
    "resolved_by",
    "reopen_count",
    "updated_at",
)
# What the engine changes on an incident it loaded.
_INCIDENT_MUTABLE = (
    "open_key",
    "status",
    "alert_count",
    "firing_count",
    "detected_at",
    "resolved_at",
    "resolved_by",
    "reopen_count",
    "updated_at",
)


_NEWEST_OF_KEYS = _by_dialect(
    lambda member: (
        select(func.max(INCIDENTS.c.id))
        .where(member(INCIDENTS.c.key, "keys"))
        .group_by(INCIDENTS.c.key)
    )
)
_INCIDENTS = _by_dialect(
    lambda member: (
        select(INCIDENTS.c.id, *(INCIDENTS.c[name] for name in _INCIDENT_FIELDS))
        .where(or_(member(INCIDENTS.c.open_key, "keys"), member(INCIDENTS.c.id, "ids")))
        .order_by(INCIDENTS.c.key, INCIDENTS.c.id)
    )
)
# PostgreSQL locks the rows (in the sorted order); SQLite holds its write lock already.
_INCIDENTS_LOCKED = {
    "sqlite": _INCIDENTS["sqlite"],
    "postgresql": _INCIDENTS["postgresql"].with_for_update(),
}


async def lock_incidents(
    session: AsyncSession, keys: Iterable[str], ids: Iterable[int]
) -> list[IncidentState]:
    """The open incident of each key, the newest incident of each key (to re-open), and the
    incidents ``ids``; on PostgreSQL locked in (key, id) order."""
    keys = sorted(set(keys))
    if not keys:
        return []
    connection = await session.connection()
    # The newest of each key first, unlocked: as a subquery of the locking SELECT it made
    # PostgreSQL scan every incident instead of two index lookups.
    dialect = _dialect(session)
    newest = {int(i) for (i,) in await connection.execute(_NEWEST_OF_KEYS[dialect], {"keys": keys})}
    wanted = sorted(newest | set(ids))
    if not wanted:
        # No key has an incident, so none has an open one (``open_key`` is the incident's key
        # or NULL): nothing to lock. One that another replica opens meanwhile makes this
        # batch's INSERT fail on the UNIQUE ``open_key`` and the batch is redone, as when it
        # commits after the locking SELECT.
        return []
    return [
        IncidentState(*row)
        for row in await connection.execute(
            _INCIDENTS_LOCKED[dialect], {"keys": keys, "ids": wanted}
        )
    ]


@dataclass(slots=True, eq=False)
class AlertState:
    """An incident's alert as the batch works on it (``id`` None: new, to insert)."""

    id: int | None
    incident: IncidentState
    fingerprint: str
    status: str
    starts_at: datetime
    ends_at: datetime | None
    labels: dict[str, Any]
    annotations: dict[str, Any]
    generator_url: str | None
    source: str
    first_seen_at: datetime
    last_seen_at: datetime
    changed: bool = False


async def alerts_of(
    session: AsyncSession, incidents: Sequence[IncidentState], wanted: Iterable[tuple[str, str]]
) -> list[AlertState]:
    """The alerts the batch may touch: for each (key, fingerprint) in ``wanted``, that alert
    of each of ``incidents`` with that key (open, newest, holding: at most three).

    Looked up by exact (incident, fingerprint) pairs, each one probe of the UNIQUE index: a
    storm incident holds tens of thousands of alerts, and "incident IN (...) AND fingerprint
    IN (...)" let PostgreSQL's planner scan them all, hundreds of ms per batch.
    """
    by_id = {incident.ident: incident for incident in incidents}
    of_key: dict[str, list[int]] = {}
    for incident in incidents:
        of_key.setdefault(incident.key, []).append(incident.ident)
    pairs = sorted({(i, fp) for key, fp in wanted for i in of_key.get(key, ())})
    if not pairs:
        return []
    if _dialect(session) == "postgresql":
        query = _ALERT_PAIRS
        params: dict[str, Any] = {
            "ids": [i for i, _ in pairs],
            "fingerprints": [fp for _, fp in pairs],
        }
    else:
        query = _ALERTS_OF_JSON
        params = {"pairs": json_text(pairs)}
    connection = await session.connection()
    return [
        AlertState(r[0], by_id[r[1]], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11])
        for r in await connection.execute(query, params)
    ]


_ALERT_COLUMNS = (
    ALERTS.c.id,
    ALERTS.c.incident_id,
    ALERTS.c.fingerprint,
    ALERTS.c.status,
    ALERTS.c.starts_at,
    ALERTS.c.ends_at,
    ALERTS.c.labels,
    ALERTS.c.annotations,
    ALERTS.c.generator_url,
    ALERTS.c.source,
    ALERTS.c.first_seen_at,
    ALERTS.c.last_seen_at,
)
# PostgreSQL: the exact pairs, as two arrays unnested side by side.
_WANTED_PAIRS = (
    func.unnest(
        bindparam("ids", type_=postgresql.ARRAY(BigInteger)),
        bindparam("fingerprints", type_=postgresql.ARRAY(String)),
    )
    .table_valued("incident_id", "fingerprint")
    .render_derived(name="wanted")
)
_ALERT_PAIRS = select(*_ALERT_COLUMNS).join(
    _WANTED_PAIRS,
    and_(
        ALERTS.c.incident_id == _WANTED_PAIRS.c.incident_id,
        ALERTS.c.fingerprint == _WANTED_PAIRS.c.fingerprint,
    ),
)
# SQLite: the exact pairs too, as one JSON array of [incident_id, fingerprint] that json_each
# reads, each pair one probe of the UNIQUE (incident_id, fingerprint) index. Two INs (one of
# ids, one of fingerprints) probed every combination: a batch of 250 alerts on as many
# incidents was 62,500 probes (2.7 ms against 0.24), a fifth of the engine's work when a storm
# spreads over many incidents; a row-value IN scanned the table.
_WANTED_JSON = (
    func.json_each(bindparam("pairs", type_=String)).table_valued("value").alias("wanted")
)
_ALERTS_OF_JSON = select(*_ALERT_COLUMNS).join(
    _WANTED_JSON,
    and_(
        ALERTS.c.incident_id == _WANTED_JSON.c.value.op("->>")(0),
        ALERTS.c.fingerprint == _WANTED_JSON.c.value.op("->>")(1),
    ),
)


@dataclass(frozen=True, slots=True)
class TimelineRow:
    incident: IncidentState
    at: datetime
    actor: str
    kind: str
    summary: str
    details: dict[str, Any]


@dataclass(frozen=True, slots=True)
class TimerRow:
    """A timer whose dedup key and payload need the incident's id (known once inserted)."""

    incident: IncidentState
    kind: str
    make_key: Callable[[int], str]
    due_at: datetime
    payload: dict[str, Any]
    now: datetime


@dataclass(slots=True)
class BatchWrites:
    """Everything one batch writes, in the order it happened."""

    incidents: list[IncidentState] = field(default_factory=list)  # loaded or new, touched
    alerts: list[AlertState] = field(default_factory=list)  # loaded or new, touched
    timeline: list[TimelineRow] = field(default_factory=list)
    timers: list[TimerRow] = field(default_factory=list)


# The executemany writes as driver SQL (bot.store.driver_sql): SQLAlchemy's per-row parameter
# handling was more of the engine's CPU than the rows' writing. Each row's values in the order
# of the statement's names.
_UPDATE_INCIDENTS = DriverStatement(
    update(INCIDENTS)
    .where(INCIDENTS.c.id == bindparam("p_id"))
    .values({name: bindparam(f"p_{name}") for name in _INCIDENT_MUTABLE}),
    ("p_id", *(f"p_{name}" for name in _INCIDENT_MUTABLE)),
)
_incident_mutable = attrgetter(*_INCIDENT_MUTABLE)


def _inserted(incident: IncidentState) -> dict[str, Any]:
    """A new incident's values, as its INSERT takes them."""
    return {name: getattr(incident, name) for name in _INCIDENT_FIELDS}


_INSERT_INCIDENTS_RETURNING = insert(INCIDENTS).returning(
    INCIDENTS.c.id, sort_by_parameter_order=True
)
_INSERT_INCIDENT_RETURNING = insert(INCIDENTS).returning(INCIDENTS.c.id)
# A timer already set (its dedup key) is kept as it is.
_INSERT_TIMERS = insert_rows(
    TIMERS,
    ("kind", "dedup_key", "due_at", "incident_id", "payload", "created_at"),
    skip_conflicts_on=("dedup_key",),
)


# A key's first incident, inserted only while no incident has its key: a lone alert of a new
# key opens its incident in one statement instead of two (the newest incident of the key, then
# the INSERT), one round trip fewer on the path to its first mitigation (issue 16). With
# incidents of the key (another replica's, an earlier process's) it inserts nothing.
_FIRST_OF_KEY_PARAMS = {
    name: bindparam(name, type_=INCIDENTS.c[name].type) for name in _INCIDENT_FIELDS
}
_INSERT_FIRST_OF_KEY = (
    insert(INCIDENTS)
    .from_select(
        list(_INCIDENT_FIELDS),
        select(*_FIRST_OF_KEY_PARAMS.values()).where(
            ~exists().where(INCIDENTS.c.key == _FIRST_OF_KEY_PARAMS["key"])
        ),
    )
    .returning(INCIDENTS.c.id)
)


async def insert_first_of_key(session: AsyncSession, incident: IncidentState) -> bool:
    """Insert the new ``incident`` if no incident has its key (its id set): then it is what
    :func:`write_incidents` would have written after :func:`lock_incidents` found nothing of
    the key. False, and nothing written, when the key has incidents: read them as usual.

    The check and the INSERT are one statement. Another transaction's incident of the key not
    yet committed is not seen, as by :func:`lock_incidents`: both then open one, and the
    UNIQUE ``open_key`` fails the later one (its batch is redone)."""
    connection = await session.connection()
    inserted = (
        await connection.execute(_INSERT_FIRST_OF_KEY, _inserted(incident))
    ).scalar_one_or_none()
    if inserted is None:
        return False
    incident.id = int(inserted)
    return True


async def write_incidents(session: AsyncSession, writes: BatchWrites) -> None:
    """Write a batch's incidents: changed ones first (so a resolve frees its open key before a
    new incident takes it), then the new ones, which get their ids. Then
    :func:`write_rows`."""
    connection = await session.connection()
    changed = [i for i in writes.incidents if i.id is not None and i.changed]
    # Those that give up their open key first: the UNIQUE is checked row by row.
    changed.sort(key=lambda i: (i.open_key is not None, i.key, i.ident))
    await _UPDATE_INCIDENTS.execute_many(
        connection, [(i.id, *_incident_mutable(i)) for i in changed]
    )
    new = [i for i in writes.incidents if i.id is None]
    if new:
        values = [_inserted(i) for i in new]
        if session.get_bind().dialect.name == "postgresql":
            result = await connection.execute(_INSERT_INCIDENTS_RETURNING, values)
            ids = [int(i) for (i,) in result.all()]
        elif len(values) == 1:
            # One new incident (a lone alert: the path to its first mitigation): no executemany
            # bookkeeping.
            result = await connection.execute(_INSERT_INCIDENT_RETURNING, values[0])
            ids = [int(result.scalar_one())]
        else:
            # The statement built once, so SQLAlchemy's compiled cache serves it, executed for
            # the list: SQLAlchemy sends it as multi-row INSERTs ("insertmanyvalues"; a
            # ``values(list)`` construct was compiled again for every batch). Unordered: an
            # ordered RETURNING goes to SQLite one row at a time; SQLite, with one writer,
            # numbers the rows of a multi-row INSERT in their order, so the ids sorted are the
            # rows' ids in order.
            result = await connection.execute(_INSERT_INCIDENT_RETURNING, values)
            ids = sorted(int(i) for (i,) in result.all())
        for incident, incident_id in zip(new, ids, strict=True):
            incident.id = incident_id


async def write_rows(session: AsyncSession, writes: BatchWrites, *also: Rows) -> None:
    """Write what belongs to the batch's incidents (written before: their ids are known):
    alerts, timeline and timers, and ``also`` (the inbox's outcomes): on PostgreSQL in one
    round trip (:func:`~bot.store.driver_sql.execute_together`; none of them reads another's
    rows, and an alert updated is never one inserted)."""
    connection = await session.connection()
    await execute_together(
        connection,
        (
            Rows(
                _UPDATE_ALERTS,
                [
                    (a.id, *_alert_mutable(a))
                    for a in writes.alerts
                    if a.id is not None and a.changed
                ],
            ),
            Rows(
                _INSERT_ALERTS,
                [(a.incident.ident, *_alert_written(a)) for a in writes.alerts if a.id is None],
            ),
            Rows(
                _INSERT_TIMELINE,
                [
                    (e.incident.ident, e.at, e.actor, e.kind, e.summary, e.details)
                    for e in writes.timeline
                ],
            ),
            Rows(
                _INSERT_TIMERS,
                [
                    (
                        t.kind,
                        t.make_key(t.incident.ident),
                        t.due_at,
                        t.incident.ident,
                        t.payload,
                        t.now,
                    )
                    for t in writes.timers
                ],
            ),
            *also,
        ),
    )


_ALERT_MUTABLE = (
    "status",
    "starts_at",
    "ends_at",
    "labels",
    "annotations",
    "generator_url",
    "last_seen_at",
)


class _JsonText(TypeDecorator[dict[str, Any]]):
    """A JSON column the batch writes, as :func:`~bot.store.inbox_sql.json_text` writes the
    inbox's: an alert's labels or annotations (string maps) and each timeline entry's details
    (strings, numbers, None and the alert's labels), which orjson turns into the same JSON
    values the stdlib reads back, ten times faster (the stdlib encoder was a tenth of the
    batch's CPU for the labels; for the per-alert details, 4.9 against 0.4 µs, about 3% of a
    storm's CPU on PostgreSQL)."""

    impl = JSON
    cache_ok = True

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any]:
        def process(value: Any) -> Any:
            return None if value is None else json_text(value)

        return process


# Labels and annotations through the batch's orjson text (the columns' own type is JSON).
_ALERT_TYPES = {"labels": _JsonText(), "annotations": _JsonText()}
# An insert writes the mutable columns and those fixed at the alert's first sight. Updates on
# PostgreSQL as one statement: no unique column among them, and the incidents (so their
# alerts) are locked by the batch.
_ALERT_FIXED = ("fingerprint", "source", "first_seen_at")
_ALERT_INSERTED = ("incident_id", *_ALERT_FIXED, *_ALERT_MUTABLE)
_UPDATE_ALERTS = update_rows(ALERTS, "id", _ALERT_MUTABLE, _ALERT_TYPES)
_INSERT_ALERTS = insert_rows(ALERTS, _ALERT_INSERTED, _ALERT_TYPES)
_alert_mutable = attrgetter(*_ALERT_MUTABLE)
_alert_written = attrgetter(*_ALERT_FIXED, *_ALERT_MUTABLE)


# The batch's own timeline INSERT, not ``bot.store.incidents.INSERT_TIMELINE``: its details are
# ones the batch builds (strings, finite numbers, None, labels), safe for orjson; the shared
# statement takes any caller's details, which the stdlib encodes as it always has (orjson would
# write a NaN as null, for one).
_TIMELINE_COLUMNS = ("incident_id", "at", "actor", "kind", "summary", "details")
_INSERT_TIMELINE = insert_rows(TIMELINE, _TIMELINE_COLUMNS, {"details": _JsonText()})


__all__ = [
    "AlertState",
    "BatchWrites",
    "ClaimedAlert",
    "IncidentState",
    "TimelineRow",
    "TimerRow",
    "alerts_of",
    "claim",
    "latest_holding",
    "lock_incidents",
    "take_write_lock",
    "write_incidents",
    "write_rows",
]
