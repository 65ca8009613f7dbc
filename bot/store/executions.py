"""Queries for mitigation executions and timers, and the one lock order.

Every transaction that locks more than one of them locks, in this order and no other:
the **incident** row, then its **execution** rows, then **timer** rows (:func:`locked` takes
the first two). An INSERT of a timeline entry or an execution also takes a key-share lock on
its incident, so a transaction that locked an execution first and then wrote the timeline
could wait for the incident while another held the incident and waited for the execution:
PostgreSQL broke that cycle with a deadlock error. One order makes such a cycle impossible;
the rare conflicts left (a lost race for a UNIQUE key) are run again by
:func:`bot.store.retry.in_transaction`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import CTE, Insert, bindparam, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.sql.dml import UpdateBase

from bot.store import incidents
from bot.store.riders import Rider, RiderShape
from bot.store.tables import Execution, Incident, TimelineEntry, Timer, table_of
from bot.store.upsert import upsert

# States in which an execution is being worked on by one replica, under its lease.
LEASED_STATES = ("running", "undoing")


# Built once (see bot.store.incidents): every mitigation request runs it, twice.
_LATEST = (
    select(Execution)
    .where(
        Execution.incident_id == bindparam("incident_id"),
        Execution.mitigation_id == bindparam("mitigation_id"),
    )
    .order_by(Execution.generation.desc())
    .limit(1)
)
_LATEST_LOCKED = _LATEST.with_for_update()


def _for_update(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


async def latest(
    session: AsyncSession, incident_id: int, mitigation_id: str, *, lock: bool = False
) -> Execution | None:
    query = _LATEST_LOCKED if lock and _for_update(session) else _LATEST
    return await session.scalar(query, {"incident_id": incident_id, "mitigation_id": mitigation_id})


async def locked(
    session: AsyncSession, incident_id: int, mitigation_id: str
) -> tuple[Incident, Execution | None]:
    """Lock the incident, then its mitigation's latest execution (the lock order above)."""
    incident = await incidents.get(session, incident_id, lock=True)
    return incident, await latest(session, incident_id, mitigation_id, lock=True)


def new_generation(
    *,
    incident_id: int,
    mitigation_id: str,
    previous: Execution | None,
    action: str,
    params: dict[str, Any],
    risk: str,
    state: str,
    requested_by: str,
    now: datetime,
    plan: dict[str, Any] | None = None,
) -> Execution:
    """The mitigation's next execution row (generation 1, or the one after ``previous``), to
    store with :func:`insert_generation`. Its idempotency key names incident, mitigation and
    generation: the backend sees the same key for every retry of this generation, and a new
    one for the next. UNIQUE (incident, mitigation, generation) makes a concurrent second
    claim fail."""
    generation = 1 if previous is None else previous.generation + 1
    return Execution(
        incident_id=incident_id,
        mitigation_id=mitigation_id,
        generation=generation,
        idempotency_key=f"ballast:{incident_id}:{mitigation_id}:{generation}",
        action=action,
        params=params,
        risk=risk,
        state=state,
        requested_by=requested_by,
        approvals={"actors": []},
        outcome={},
        plan=plan,
        error=None,
        attempts=0,
        created_at=now,
        updated_at=now,
        applied_at=None,
        undone_at=None,
        undone_by=None,
        lease_owner=None,
        lease_heartbeat_at=None,
        lease_expires_at=None,
    )


_EXECUTIONS = table_of(Execution)
_INSERT_EXECUTION = insert(_EXECUTIONS).returning(_EXECUTIONS.c.id)
_INSERTED_COLUMNS = tuple(column.key for column in _EXECUTIONS.c if column.key != "id")
# PostgreSQL: the execution and a timeline entry, one statement (the entry's parameters
# prefixed: both rows have an ``incident_id``).
_ENTRY = "entry_"
_TIMELINE = table_of(TimelineEntry)


def _with_entry(prefix: str) -> tuple[CTE, Insert]:
    """The timeline entry's INSERT as a CTE, and the execution's INSERT RETURNING its id,
    their parameters named with ``prefix``."""
    entry = (
        insert(_TIMELINE)
        .values({c.key: bindparam(prefix + _ENTRY + c.key) for c in _TIMELINE.c if c.key != "id"})
        .cte("entry")
    )
    execution = (
        insert(_EXECUTIONS)
        .values({key: bindparam(prefix + key) for key in _INSERTED_COLUMNS})
        .returning(_EXECUTIONS.c.id)
    )
    return entry, execution


def _execution_and_entry() -> UpdateBase:
    entry, execution = _with_entry("")
    return execution.add_cte(entry)


def _rider() -> RiderShape:
    """The execution and its entry as a rider of the control write that follows them
    (:mod:`bot.store.riders`), parameters prefixed ``ride_``."""
    entry, execution = _with_entry(_RIDE)
    carried = execution.cte("execution")
    return RiderShape(execution.add_cte(entry), (entry, carried), carried)


_INSERT_EXECUTION_AND_ENTRY = _execution_and_entry()
_RIDE = "ride_"
_EXECUTION_RIDER = _rider()


async def insert_generation(
    session: AsyncSession,
    execution: Execution,
    entry: dict[str, Any] | None = None,
    *,
    carry: Callable[[Rider], None] | None = None,
) -> None:
    """Store a new ``execution`` (every column set) with one INSERT built once, and put it in
    the session as the row it now is: no unit of work, whose flush cost more than the
    statement on the path from an alert to its first mitigation. ``entry``: a timeline entry
    (:func:`~bot.store.incidents.timeline_row`) written after it; on PostgreSQL in the same
    statement (a data-modifying CTE: one round trip, not two).

    ``carry``: on PostgreSQL, with an ``entry``, the two are not sent now but handed to
    ``carry`` as a :class:`~bot.store.riders.Rider` for the transaction's next control write
    (one round trip fewer again); ``execution.id`` is set once the rider is written (see
    :meth:`Rider.settle <bot.store.riders.Rider.settle>`, which its holder must call)."""
    row = {key: getattr(execution, key) for key in _INSERTED_COLUMNS}
    if entry is not None and session.get_bind().dialect.name == "postgresql":
        for name, value in entry.items():
            row[_ENTRY + name] = value
        if carry is not None:
            carry(
                Rider(
                    _EXECUTION_RIDER,
                    {_RIDE + name: value for name, value in row.items()},
                    lambda execution_id: _stored(session, execution, execution_id),
                )
            )
            return
        _stored(
            session,
            execution,
            (await session.execute(_INSERT_EXECUTION_AND_ENTRY, row)).scalar_one(),
        )
        return
    _stored(session, execution, (await session.execute(_INSERT_EXECUTION, row)).scalar_one())
    if entry is not None:
        await incidents.insert_timeline_row(session, entry)


def _stored(session: AsyncSession, execution: Execution, execution_id: int) -> None:
    """``execution`` is in the database as ``execution_id``: in the session as that row."""
    execution.id = execution_id
    make_transient_to_detached(execution)
    session.add(execution)


async def of_incident(session: AsyncSession, incident_id: int) -> Sequence[Execution]:
    """The latest execution of each mitigation of an incident."""
    rows = (
        await session.scalars(
            select(Execution)
            .where(Execution.incident_id == incident_id)
            .order_by(Execution.mitigation_id, Execution.generation)
        )
    ).all()
    newest: dict[str, Execution] = {}
    for row in rows:
        newest[row.mitigation_id] = row
    return list(newest.values())


async def by_state(session: AsyncSession, state: str) -> Sequence[Execution]:
    return (await session.scalars(select(Execution).where(Execution.state == state))).all()


async def renew_lease(
    session: AsyncSession, execution_id: int, owner: str, now: datetime, expires: datetime
) -> bool:
    """Heartbeat: extend ``owner``'s lease; False when it no longer holds it (taken over, or
    the execution finished)."""
    result = await session.execute(
        update(Execution)
        .where(
            Execution.id == execution_id,
            Execution.lease_owner == owner,
            Execution.state.in_(LEASED_STATES),
        )
        .values(lease_heartbeat_at=now, lease_expires_at=expires)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


async def expired_leases(session: AsyncSession, now: datetime) -> Sequence[Execution]:
    """Executions being applied or undone whose lease ran out (or that never had one: rows
    from before leases)."""
    query = (
        select(Execution)
        .where(
            Execution.state.in_(LEASED_STATES),
            or_(Execution.lease_expires_at.is_(None), Execution.lease_expires_at < now),
        )
        .order_by(Execution.id)
        .limit(50)
    )
    return (await session.scalars(query)).all()


async def take_over(
    session: AsyncSession, row: Execution, owner: str, now: datetime, expires: datetime
) -> bool:
    """Take an expired lease; exactly one replica wins (a conditional UPDATE: PostgreSQL
    re-checks the condition on the row a concurrent winner changed)."""
    result = await session.execute(
        update(Execution)
        .where(
            Execution.id == row.id,
            Execution.state == row.state,
            or_(Execution.lease_expires_at.is_(None), Execution.lease_expires_at < now),
        )
        .values(lease_owner=owner, lease_heartbeat_at=now, lease_expires_at=expires)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


async def hand_back_leases(session: AsyncSession, owner: str, now: datetime) -> int:
    """Let another replica take ``owner``'s leases at once (a graceful shutdown)."""
    result = await session.execute(
        update(Execution)
        .where(Execution.lease_owner == owner, Execution.state.in_(LEASED_STATES))
        .values(lease_expires_at=now)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def add_timer(
    session: AsyncSession,
    *,
    kind: str,
    dedup_key: str,
    due_at: datetime,
    incident_id: int | None,
    payload: dict[str, Any],
    now: datetime,
) -> None:
    """Schedule once: a second request with the same dedup_key changes nothing."""
    await session.execute(
        upsert(session, Timer)
        .values(
            kind=kind,
            dedup_key=dedup_key,
            due_at=due_at,
            incident_id=incident_id,
            payload=payload,
            created_at=now,
            claimed_at=None,
            fired_at=None,
            outcome=None,
        )
        .on_conflict_do_nothing(index_elements=["dedup_key"])
    )


async def due_timers(session: AsyncSession, now: datetime, lease: timedelta) -> Sequence[Timer]:
    """Timers due and not fired, unclaimed or with a claim older than ``lease``."""
    query = (
        select(Timer)
        .where(
            Timer.fired_at.is_(None),
            Timer.due_at <= now,
            or_(Timer.claimed_at.is_(None), Timer.claimed_at < now - lease),
        )
        .order_by(Timer.due_at, Timer.id)
        .limit(50)
    )
    return (await session.scalars(query)).all()


async def claim_timer(session: AsyncSession, timer: Timer, now: datetime, lease: timedelta) -> bool:
    """Atomically take a timer; False when another process (or replica) took it first."""
    result = await session.execute(
        update(Timer)
        .where(
            Timer.id == timer.id,
            Timer.fired_at.is_(None),
            or_(Timer.claimed_at.is_(None), Timer.claimed_at < now - lease),
        )
        .values(claimed_at=now)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


async def finish_timer(session: AsyncSession, timer_id: int, now: datetime, outcome: str) -> None:
    await session.execute(
        update(Timer).where(Timer.id == timer_id).values(fired_at=now, outcome=outcome[:2000])
    )


async def cancel_timer(session: AsyncSession, dedup_key: str, now: datetime, why: str) -> None:
    await session.execute(
        update(Timer)
        .where(Timer.dedup_key == dedup_key, Timer.fired_at.is_(None))
        .values(fired_at=now, outcome=f"cancelled: {why}")
    )
