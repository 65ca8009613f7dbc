"""The inbox: alerts as received, stored before the webhook answers, processed after.

``store_batch`` inserts every alert of a batch in one transaction, ignoring states already
stored (same fingerprint, startsAt and status), so retries, HA duplicates and repeat
notifications cost one indexed lookup each and change nothing. ``claim`` hands unprocessed rows
to one worker; on PostgreSQL with ``FOR UPDATE SKIP LOCKED`` so replicas never take the same
row.

Webhooks store through the group-commit writer (:mod:`bot.store.inbox_writer`), whose
statement is hand-built driver SQL (:mod:`bot.store.inbox_sql`); while webhooks arrive at a
storm's rate, ``claim`` keeps the incident engine to small, paced batches
(:mod:`bot.store.ingest_pacing`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Table, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from bot.intake.alert import Alert, AlertBatch
from bot.store.driver_sql import Rows, execute_together, update_rows
from bot.store.inbox_sql import row_of
from bot.store.ingest_pacing import IngestPacing
from bot.store.tables import InboxAlert, table_of
from bot.store.upsert import upsert


@dataclass(frozen=True, slots=True)
class StoreResult:
    received: int
    stored: int

    @property
    def duplicates(self) -> int:
        return self.received - self.stored


async def store_batch(session: AsyncSession, batch: AlertBatch, now: datetime) -> StoreResult:
    """Insert the batch's alert states that are new. Call inside a transaction."""
    if not batch.alerts:
        return StoreResult(0, 0)
    statement = _insert(session.get_bind().dialect.name, batch, now)
    stored = len((await session.execute(statement)).all())
    return StoreResult(len(batch.alerts), stored)


def _insert(dialect: str, batch: AlertBatch, now: datetime) -> Any:
    rows = [row_of(alert, batch, now) for alert in _unique_states(batch.alerts)]
    return (
        upsert(dialect, InboxAlert)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["fingerprint", "starts_at", "status"])
        .returning(InboxAlert.id)
    )


async def claim(
    session: AsyncSession, limit: int, pacing: IngestPacing | None = None
) -> Sequence[InboxAlert]:
    """Unprocessed rows, oldest first, locked for this transaction where the database can.

    With ``pacing`` (the inbox writer's), while webhooks are arriving the engine is paced
    (``ENGINE_SHARE_UNDER_INGEST``) and takes small batches (``ENGINE_BATCH_UNDER_INGEST``); on
    SQLite one row, because its transaction holds the write lock from its first row to its
    commit and every webhook waits for that.
    """
    dialect = session.get_bind().dialect.name
    if pacing is not None:
        await pacing.pace_engine()
        limit = pacing.engine_batch(limit)
    query = (
        select(InboxAlert)
        .where(InboxAlert.processed_at.is_(None))
        .order_by(InboxAlert.id)
        .limit(limit)
    )
    if dialect == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return (await session.scalars(query)).all()


def resolve_stored(rows: Table) -> ColumnElement[bool]:
    """For each row of ``rows`` (the inbox, or an alias of it): whether a resolve of its
    (fingerprint, startsAt) is stored, which makes a firing row stale. One lookup per row in
    the inbox's unique key. A scalar subquery, not EXISTS: PostgreSQL may answer an EXISTS
    with a hashed subplan, made by reading the whole key, whenever its statistics show many
    rows to look up (it prices a lookup for every one of them, not for the query's LIMIT):
    during a backlog every claim then read the history of every alert stored
    (tests/store/test_inbox_claim_plan.py). It never hashes a scalar subquery."""
    resolves = table_of(InboxAlert).alias("resolves")
    return (
        select(resolves.c.id)
        .where(
            resolves.c.fingerprint == rows.c.fingerprint,
            resolves.c.starts_at == rows.c.starts_at,
            resolves.c.status == "resolved",
        )
        .limit(1)
        .scalar_subquery()
        .is_not(None)
    )


@dataclass(frozen=True, slots=True)
class Processed:
    """The outcome of one claimed row."""

    row_id: int
    at: datetime
    outcome: str
    incident_id: int | None


# Built once, executed as driver SQL (bot.store.driver_sql): statement construction and
# SQLAlchemy's per-row parameter handling cost more CPU than a batch's rows (issue 16). On
# PostgreSQL one statement for the batch: the rows are locked by its claim.
_MARK_PROCESSED = update_rows(
    table_of(InboxAlert), "id", ("processed_at", "outcome", "incident_id")
)


def processed_marks(processed: Sequence[Processed]) -> Rows:
    """:func:`mark_processed`'s UPDATE and rows, to go with other writes of the same
    transaction (:func:`bot.store.driver_sql.execute_together`), for rows of a Core claim:
    unlike :func:`mark_processed`, it leaves the session's copies of the rows alone."""
    return Rows(_MARK_PROCESSED, [(p.row_id, p.at, p.outcome, p.incident_id) for p in processed])


async def mark_processed(session: AsyncSession, processed: Sequence[Processed]) -> None:
    """Record the outcomes of claimed rows: one executemany for the whole batch.

    A Core UPDATE leaves the session alone, so its copies of the rows are updated by hand (the
    ORM's own "evaluate" of an UPDATE scanned every object the session holds, per row:
    quadratic in the batch, 10% of the server's CPU at 200-row batches).
    """
    if not processed:
        return
    # On the session's connection, as Core: an ORM UPDATE with a list of parameters would be
    # SQLAlchemy's "bulk update by primary key", which takes no WHERE of its own.
    connection = await session.connection()
    await execute_together(connection, [processed_marks(processed)])
    identity_map = session.sync_session.identity_map
    if not len(identity_map):
        return  # the batched engine's claim is Core: its session holds no rows
    for p in processed:
        row = identity_map.get(identity_key(InboxAlert, p.row_id))
        if row is not None:
            set_committed_value(row, "processed_at", p.at)
            set_committed_value(row, "outcome", p.outcome)
            set_committed_value(row, "incident_id", p.incident_id)


async def resolved_state_exists(
    session: AsyncSession, fingerprint: str, starts_at: datetime
) -> bool:
    """Whether this firing alert was already reported resolved (its notice came late)."""
    query = select(InboxAlert.id).where(
        InboxAlert.fingerprint == fingerprint,
        InboxAlert.starts_at == starts_at,
        InboxAlert.status == "resolved",
    )
    return (await session.scalar(query.limit(1))) is not None


async def oldest_unprocessed(session: AsyncSession) -> datetime | None:
    """When the oldest row still to process arrived (the inbox lag's start): the first by id,
    the next the engine claims, found through the unprocessed rows' index. ``min(received_at)``
    over them read every unprocessed row instead: 20 ms per scrape with a 100,000-alert backlog
    (SQLite), 200 with a million, on the core the engine works on (issue 16)."""
    return await session.scalar(OLDEST_UNPROCESSED)


OLDEST_UNPROCESSED = (
    select(InboxAlert.received_at)
    .where(InboxAlert.processed_at.is_(None))
    .order_by(InboxAlert.id)
    .limit(1)
)


async def count_unprocessed(session: AsyncSession) -> int:
    return int(
        await session.scalar(
            select(func.count()).select_from(InboxAlert).where(InboxAlert.processed_at.is_(None))
        )
        or 0
    )


class PendingCount:
    """The unprocessed rows' count for ``/metrics``, counted again at most as often as the
    count's own cost allows.

    Counting is a scan of the unprocessed rows' index: with a backlog of a million freshly
    stored rows that is 250-290 ms of PostgreSQL's CPU (50-60 ms once vacuumed), per scrape.
    A count is kept for ``cost_factor`` times what it took (a 1 ms count: 20 ms, so every
    ordinary scrape counts afresh; a 290 ms one: 5.8 s), so frequent scrapes during a storm
    never spend more than a twentieth of a core of the database on it. ``clock``: monotonic
    seconds.
    """

    def __init__(
        self, *, cost_factor: float = 20.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._cost_factor = cost_factor
        self._clock = clock
        self._value: int | None = None
        self._until = 0.0

    async def read(self, session: AsyncSession) -> int:
        started = self._clock()
        if self._value is None or started >= self._until:
            self._value = await count_unprocessed(session)
            self._until = started + (self._clock() - started) * self._cost_factor
        return self._value


def _unique_states(alerts: Sequence[Alert]) -> list[Alert]:
    """One row per (fingerprint, startsAt, status) even if the payload repeats an alert."""
    seen: dict[tuple[str, datetime, str], Alert] = {}
    for alert in alerts:
        seen.setdefault((alert.fingerprint, alert.starts_at, alert.status.value), alert)
    return list(seen.values())


__all__ = [
    "PendingCount",
    "Processed",
    "StoreResult",
    "claim",
    "count_unprocessed",
    "mark_processed",
    "oldest_unprocessed",
    "processed_marks",
    "resolve_stored",
    "resolved_state_exists",
    "store_batch",
]
