"""The inbox's retention: processed alert states older than ``inbox.retention`` are deleted.

Every alert state a webhook stores stays in ``inbox_alerts`` after the engine processed it: a
storm of a million alerts is a million rows, and without a limit the table and its unique key
grow for as long as Ballast runs. The incident keeps what an investigation needs of them (its
alerts, its timeline); the inbox row's remaining jobs are short-lived, and retention keeps it
exactly as long as those can matter:

- a resend of the same state (fingerprint, startsAt, status) is a duplicate because its row
  exists. Alertmanager resends a *firing* alert every ``repeat_interval`` for as long as it
  fires, so a firing row is kept while no resolve of it is stored: deleting it would make the
  next resend a new alert, and a week-old alert whose incident someone resolved would open a
  new incident at 3 a.m. A firing row whose resolve is stored, or that arrived after its
  resolve (``stale``), goes with the rest: nobody resends it.
- a late firing is stale because its resolve is stored: retention is at least a day, far past
  any sender's retries.
- ``GET /api/v1/alerts?since=`` (``ballast runbooks diff``'s traffic) reaches back as far as
  the retention.

Unprocessed rows are never deleted, whatever their age. The pruner walks the primary key from
the oldest row in batches, one short transaction each (on SQLite a webhook waits for at most one
batch), rests between batches, and stops at the first row received after the cutoff. Several
replicas may prune at once: a row is deleted by id and only while processed, so a second
delete of it deletes nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import BigInteger, bindparam, delete, select

from bot.metrics import Metrics
from bot.runtime.worker import WorkerLoop
from bot.store.database import Database
from bot.store.inbox import resolve_stored
from bot.store.tables import InboxAlert, table_of

log = logging.getLogger(__name__)

INBOX = table_of(InboxAlert)

# Rows looked at per transaction (13 ms on SQLite, 17 ms on PostgreSQL: bench/retention.py),
# and the rest between two batches: at least REST_SECONDS and twice what the batch took, so a
# pass takes at most a third of the database's writing (SQLite's writes take turns: webhooks
# and the engine go first).
BATCH = 500
REST_SECONDS = 0.05
# How often a replica looks for expired rows (the first pass one interval after start).
EVERY_SECONDS = 15 * 60.0
# Less would let a sender's retry of a state already handled become a new alert.
MINIMUM = timedelta(days=1)
# The engine's outcome of a firing row that arrived after its resolve: AlertOutcome.STALE
# (bot/incidents/outcome.py: the store sits below the engine; a test keeps them equal).
STALE = "stale"

_STATES = (
    select(
        INBOX.c.id,
        INBOX.c.received_at,
        INBOX.c.processed_at,
        INBOX.c.status,
        INBOX.c.outcome,
        resolve_stored(INBOX).label("resolve_stored"),
    )
    .where(INBOX.c.id > bindparam("after", type_=BigInteger))
    .order_by(INBOX.c.id)
)

_DELETE = delete(INBOX).where(
    INBOX.c.id.in_(bindparam("ids", expanding=True)), INBOX.c.processed_at.is_not(None)
)


@dataclass(frozen=True, slots=True)
class StoredState:
    """What retention looks at in one inbox row."""

    id: int
    received_at: datetime
    processed_at: datetime | None
    status: str
    outcome: str | None
    resolve_stored: bool


def expired(row: StoredState, cutoff: datetime) -> bool:
    """Whether ``row`` may go: processed, received before ``cutoff``, and not a firing state
    that may still be resent (see the module's docstring)."""
    if row.processed_at is None or row.received_at >= cutoff:
        return False
    if row.status != "firing":
        return True
    return row.resolve_stored or row.outcome == STALE


@dataclass(frozen=True, slots=True)
class Batch:
    deleted: int
    last_id: int  # the last row looked at: the next batch starts after it
    done: bool  # reached a row received after the cutoff, or the end of the inbox


async def prune_batch(db: Database, cutoff: datetime, after: int, limit: int = BATCH) -> Batch:
    """Look at the ``limit`` rows after id ``after`` and delete the expired ones, in one
    transaction."""
    async with db.transaction() as session:
        connection = await session.connection()
        rows = [
            StoredState(*row)
            for row in await connection.execute(_STATES.limit(limit), {"after": after})
        ]
        ids = [row.id for row in rows if expired(row, cutoff)]
        deleted = 0
        if ids:
            deleted = (await connection.execute(_DELETE, {"ids": ids})).rowcount
    return Batch(
        deleted=deleted,
        last_id=rows[-1].id if rows else after,
        # Ids follow arrival: past the first row received after the cutoff, all are newer.
        done=len(rows) < limit or any(row.received_at >= cutoff for row in rows),
    )


class InboxPruner:
    """Deletes expired inbox rows every ``EVERY_SECONDS`` (a :class:`WorkerLoop`)."""

    def __init__(
        self,
        db: Database,
        retention: timedelta,
        metrics: Metrics,
        clock: Callable[[], datetime],
        *,
        every: float = EVERY_SECONDS,
        rest: float = REST_SECONDS,
        batch: int = BATCH,
    ) -> None:
        if retention < MINIMUM:
            raise ValueError(f"inbox retention must be at least {MINIMUM}, not {retention}")
        self._db = db
        self._retention = retention
        self._metrics = metrics
        self._clock = clock
        self._rest = rest
        self._batch = batch
        self.loop = WorkerLoop(
            self.prune,
            poll_interval=every,
            log=log,
            failure="inbox retention pass failed; will retry",
            rest_first=True,
        )

    async def prune(self) -> None:
        """One pass: every expired row, oldest first, batch by batch. Returns early when the
        server stops (the next start goes on from the oldest row again)."""
        cutoff = self._clock() - self._retention
        after, total = 0, 0
        while not self.loop.stopping:
            started = time.monotonic()
            batch = await prune_batch(self._db, cutoff, after, self._batch)
            total += batch.deleted
            self._metrics.inbox_pruned.inc(batch.deleted)
            if batch.done:
                break
            after = batch.last_id
            await asyncio.sleep(max(self._rest, 2 * (time.monotonic() - started)))
        if total:
            log.info("inbox retention: deleted %d alert states received before %s", total, cutoff)


__all__ = [
    "BATCH",
    "MINIMUM",
    "STALE",
    "Batch",
    "InboxPruner",
    "StoredState",
    "expired",
    "prune_batch",
]
