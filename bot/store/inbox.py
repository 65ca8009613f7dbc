"""The inbox: alerts as received, stored before the webhook answers, processed after.

``store`` inserts every alert of a batch in one transaction, ignoring states already stored
(same fingerprint, startsAt and status), so retries, HA duplicates and repeat notifications
cost one indexed lookup each and change nothing. ``claim`` hands unprocessed rows to one
worker; on PostgreSQL with ``FOR UPDATE SKIP LOCKED`` so replicas never take the same row.

Webhooks store through :class:`InboxWriter` (``writer_for(db)``), which commits the batches of
every webhook waiting at the same moment as one INSERT: one statement, one commit, one fsync and
one hand-over of SQLite's write lock for many requests instead of one each. The rows RETURNING
gives back are counted to the request that sent them, so each receipt counts exactly its own new
and duplicate alerts, and a request is answered only once the statement holding its rows has
committed. While webhooks arrive at a storm's rate, ``claim`` keeps the incident engine to small,
paced batches so that it does not hold up the webhooks (see the constants below).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import weakref
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

import orjson
from sqlalchemy import JSON, Table, bindparam, func, select, update
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from bot.intake.alert import Alert, AlertBatch
from bot.store.database import DATABASE_KEY, Database
from bot.store.tables import InboxAlert
from bot.store.transient import is_unavailable
from bot.store.upsert import upsert

# Requests and rows per group: bound how long one commit holds the write lock. A group of at
# most MAX_GROUP_ROWS rows is one INSERT statement (a single request may exceed it alone).
MAX_GROUP = 64
MAX_GROUP_ROWS = 1000
# Writer tasks on PostgreSQL (SQLite has one: its writes are serialised anyway).
POSTGRES_WRITERS = 4
# While webhooks are arriving, rows per incident-engine transaction. SQLite: the engine holds
# the write lock from its first row to its commit (a few ms per alert) and every webhook waits
# for it, so a 200-row batch was a 0.5-1 s webhook stall. PostgreSQL: no such wait, but shorter
# batches interleave better with the webhooks on the one event loop. Without webhooks arriving
# the engine takes its full batch.
ENGINE_BATCH_UNDER_INGEST = {"sqlite": 1, "postgresql": 20}
# While webhooks are arriving, the share of the time the incident engine may spend on batches.
# Its work is a few ms of CPU per alert on the event loop it shares with the webhooks; unpaced,
# it took all the CPU the webhooks left and every webhook queued behind it. Paced, a storm is
# stored at once and processed as fast as this share allows, then at full speed once the storm
# is over (the inbox is what makes that safe).
ENGINE_SHARE_UNDER_INGEST = 0.25
ENGINE_MAX_PAUSE_SECONDS = 2.0
# Webhooks count as arriving while one is queued or being written, or while the writer has
# committed at least this many groups or alerts in the current or the last half second (a
# storm, not a trickle: at a few webhooks a second the engine keeps up and nothing needs
# pacing; alerts too, because 50-alert notifications make a storm of few requests).
INGEST_WINDOW_SECONDS = 0.5
INGEST_BUSY_COMMITS = 10
INGEST_BUSY_ALERTS = 200


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
    rows = [_row(alert, batch, now) for alert in _unique_states(batch.alerts)]
    return (
        upsert(dialect, InboxAlert)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["fingerprint", "starts_at", "status"])
        .returning(InboxAlert.id)
    )


@dataclass(slots=True)
class _Waiting:
    batch: AlertBatch
    now: datetime
    answer: asyncio.Future[StoreResult]


class InboxWriter:
    """Group commit for the webhooks of one database (see the module docstring).

    Background tasks write (one on SQLite, whose writes are serialised anyway; a few on
    PostgreSQL, so a commit's round trips overlap the next group's); a request queues its batch
    and waits for its receipt. A request that stopped waiting (its webhook already answered
    503) is dropped before it is written: an overloaded server sheds work instead of storing
    what the sender will send again.
    """

    def __init__(self, db: Database) -> None:
        self._db = db
        self._queue: deque[_Waiting] = deque()
        self._kick: asyncio.Event | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._writing = 0
        self._window_start = 0.0
        self._commits = 0
        self._commits_before = 0
        self._alerts = 0
        self._alerts_before = 0
        self._engine_started = 0.0

    async def pace_engine(self) -> None:
        """Called as the engine starts a batch: under webhook load, rest in proportion to the
        time it spent since its last batch started, so it keeps to its share of the loop."""
        now = time.monotonic()
        worked, self._engine_started = now - self._engine_started, now
        if not self.busy:
            return
        rest = worked * (1 - ENGINE_SHARE_UNDER_INGEST) / ENGINE_SHARE_UNDER_INGEST
        await asyncio.sleep(min(rest, ENGINE_MAX_PAUSE_SECONDS))
        self._engine_started = time.monotonic()

    @property
    def busy(self) -> bool:
        """Webhooks are arriving: queued, being written, or committed at a storm's rate."""
        if self._queue or self._writing:
            return True
        self._roll_window(time.monotonic())
        return (
            max(self._commits, self._commits_before) >= INGEST_BUSY_COMMITS
            or max(self._alerts, self._alerts_before) >= INGEST_BUSY_ALERTS
        )

    def _roll_window(self, now: float) -> None:
        if now - self._window_start >= INGEST_WINDOW_SECONDS:
            recent = now - self._window_start < 2 * INGEST_WINDOW_SECONDS
            self._commits_before = self._commits if recent else 0
            self._alerts_before = self._alerts if recent else 0
            self._commits, self._alerts, self._window_start = 0, 0, now

    def _committed(self, alerts: int) -> None:
        self._roll_window(time.monotonic())
        self._commits += 1
        self._alerts += alerts

    async def store(self, batch: AlertBatch, now: datetime) -> StoreResult:
        """Store ``batch``; returns once it is committed (raises what the commit raised)."""
        if not batch.alerts:
            return StoreResult(0, 0)
        loop = asyncio.get_running_loop()
        if self._kick is None or not any(not task.done() for task in self._tasks):
            self._start(loop)
        assert self._kick is not None
        answer: asyncio.Future[StoreResult] = loop.create_future()
        self._queue.append(_Waiting(batch, now, answer))
        self._kick.set()
        return await answer

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._kick = asyncio.Event()
        count = 1 if self._db.is_sqlite else POSTGRES_WRITERS
        self._tasks = [loop.create_task(self._run(), name="inbox-writer") for _ in range(count)]
        for task in self._tasks:
            self._db.own(task)

    async def _run(self) -> None:
        assert self._kick is not None
        connection = _Connection(self._db)
        try:
            while True:
                if not self._queue:
                    self._kick.clear()
                    await self._kick.wait()
                    continue
                group: list[_Waiting] = []
                rows = 0
                while self._queue and len(group) < MAX_GROUP:
                    size = len(self._queue[0].batch.alerts)
                    if group and rows + size > MAX_GROUP_ROWS:
                        break
                    waiting = self._queue.popleft()
                    if not waiting.answer.done():
                        group.append(waiting)
                        rows += size
                if group:
                    self._writing += 1
                    try:
                        await self._write_group(group, connection)
                    finally:
                        self._writing -= 1
        finally:
            # Writers stop together, when the database closes: nobody is left to write these.
            stopped = TimeoutError("the inbox writer stopped (shutting down)")
            for waiting in self._queue:
                _fail(waiting, stopped)
            self._queue.clear()
            await connection.close()

    async def _write_group(self, group: list[_Waiting], connection: _Connection) -> None:
        try:
            results = await self._write(group, connection)
        except asyncio.CancelledError:
            for waiting in group:
                _fail(waiting, TimeoutError("the inbox writer stopped (shutting down)"))
            raise
        except Exception as err:
            # The database is busy or away: every request of the group gets that answer (503).
            if len(group) == 1 or is_unavailable(err):
                for waiting in group:
                    _fail(waiting, err)
                return
            # Perhaps one request's rows broke the transaction: write each on its own, so
            # only that request fails.
            for waiting in group:
                try:
                    (result,) = await self._write([waiting], connection)
                except Exception as single:
                    _fail(waiting, single)
                else:
                    _succeed(waiting, result)
            return
        for waiting, result in zip(group, results, strict=True):
            _succeed(waiting, result)

    async def _write(self, group: list[_Waiting], connection: _Connection) -> list[StoreResult]:
        """One INSERT for the whole group, its RETURNING rows counted back to each request.

        An alert state sent by two requests of the group belongs to the first (the second got
        it as a duplicate, as if they had been written one after the other). The statement is
        the driver's own SQL with values converted by the columns' SQLAlchemy types (see
        ``_InsertPlan``): per group, SQLAlchemy's compile, executemany batching and result
        typing cost more CPU than the database's work. Rows go in key order, so concurrent
        groups on PostgreSQL take index locks in the same order and cannot deadlock.
        """
        plan = _InsertPlan.of(self._db.engine.dialect)
        owner: dict[tuple[Any, ...], int] = {}
        keyed: list[tuple[tuple[Any, ...], list[Any]]] = []
        for index, waiting in enumerate(group):
            for values in plan.rows(waiting.batch, waiting.now):
                key = plan.key(values)
                if key not in owner:
                    owner[key] = index
                    keyed.append((key, values))
        keyed.sort(key=lambda pair: pair[0])
        rows = [values for _, values in keyed]
        stored = [0] * len(group)
        single = len(rows) <= MAX_GROUP_ROWS
        async with connection.transaction(single_statement=single) as conn:
            for start in range(0, len(rows), MAX_GROUP_ROWS):
                chunk = rows[start : start + MAX_GROUP_ROWS]
                result = await conn.exec_driver_sql(plan.sql(len(chunk)), plan.flat(chunk))
                for returned in result.all():
                    # A key we cannot place rolls the group back; it is then written request
                    # by request, where no placing is needed.
                    stored[owner[tuple(returned)]] += 1
        self._committed(len(rows))
        return [StoreResult(len(w.batch.alerts), n) for w, n in zip(group, stored, strict=True)]


class _InsertPlan:
    """The writer's INSERT as driver SQL, with SQLAlchemy's own conversion of each value.

    The columns and their bind processors come from the ``InboxAlert`` table and the
    dialect, so the stored values are exactly what SQLAlchemy would have sent (SQLite's
    datetime text, JSON text); RETURNING gives the key columns back as stored, which match the
    converted values sent. Statements are made per row count and kept (a few dozen sizes).
    """

    _plans: ClassVar[dict[str, _InsertPlan]] = {}
    KEY = ("fingerprint", "starts_at", "status")

    def __init__(self, dialect: Dialect) -> None:
        table = InboxAlert.__table__
        assert isinstance(table, Table)
        per_alert = [c.name for c in table.columns if c.name not in ("id", *_PER_WEBHOOK)]
        # Per-alert columns first, then those of the whole webhook, converted once per webhook.
        self.columns = [*per_alert, *_PER_WEBHOOK]
        processors = {
            name: (
                _json_text
                if isinstance(table.c[name].type, JSON)
                else table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
            )
            for name in self.columns
        }
        self.alert_processors = [(name, processors[name]) for name in per_alert]
        self.webhook_processors = [(name, processors[name]) for name in _PER_WEBHOOK]
        self.key_at = [self.columns.index(name) for name in self.KEY]
        self.numbered = dialect.paramstyle == "numeric_dollar"
        self.casts = [
            "::json" if self.numbered and isinstance(table.c[name].type, JSON) else ""
            for name in self.columns
        ]
        key_columns = ", ".join(self.KEY)
        # Names from the table definition, values only as parameters: nothing from a request.
        self.head = f"INSERT INTO {table.name} ({', '.join(self.columns)}) VALUES "  # noqa: S608
        self.tail = f" ON CONFLICT ({key_columns}) DO NOTHING RETURNING {key_columns}"
        self._sql: dict[int, str] = {}

    @classmethod
    def of(cls, dialect: Dialect) -> _InsertPlan:
        plan = cls._plans.get(dialect.name)
        if plan is None:
            plan = cls._plans[dialect.name] = cls(dialect)
        return plan

    def rows(self, batch: AlertBatch, now: datetime) -> Iterator[list[Any]]:
        """The converted values of each alert of ``batch``, in ``columns`` order."""
        shared = _converted(self.webhook_processors, _webhook_row(batch, now))
        for alert in batch.alerts:
            yield _converted(self.alert_processors, _alert_row(alert)) + shared

    def key(self, values: list[Any]) -> tuple[Any, ...]:
        return tuple(values[i] for i in self.key_at)

    def flat(self, rows: list[list[Any]]) -> tuple[Any, ...]:
        return tuple(value for row in rows for value in row)

    def sql(self, count: int) -> str:
        sql = self._sql.get(count)
        if sql is None:
            width = len(self.columns)
            if self.numbered:
                groups = (
                    "("
                    + ", ".join(f"${n * width + i + 1}{self.casts[i]}" for i in range(width))
                    + ")"
                    for n in range(count)
                )
            else:
                groups = ("(" + ", ".join("?" * width) + ")" for _ in range(count))
            sql = self.head + ", ".join(groups) + self.tail
            if len(self._sql) < 256:
                self._sql[count] = sql
        return sql


class _Connection:
    """The connection a writer task uses for its transactions.

    SQLite: a pooled connection per transaction, because returning it to the pool is what
    hands the write gate on. PostgreSQL: a group that is one INSERT statement runs on a kept
    connection in autocommit — the statement is atomic and committed when it returns, so one
    round trip instead of four (pool pre-ping, BEGIN, INSERT, COMMIT); PostgreSQL shares one
    WAL flush among commits that coincide, so several writers cost no extra fsyncs. A broken
    connection fails its group (503: the sender retries) and the next group opens a fresh one.
    A larger group takes an ordinary pooled transaction.
    """

    def __init__(self, db: Database) -> None:
        self._db = db
        self._kept: AsyncConnection | None = None

    @contextlib.asynccontextmanager
    async def transaction(self, *, single_statement: bool) -> AsyncIterator[AsyncConnection]:
        if self._db.is_sqlite or not single_statement:
            async with self._db.engine.begin() as conn:
                yield conn
            return
        if self._kept is None:
            conn = await self._db.engine.connect()
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            self._kept = conn
        conn = self._kept
        try:
            yield conn
            await conn.commit()  # ends SQLAlchemy's bookkeeping; the database already did
        except BaseException:
            if conn.invalidated or conn.closed:
                self._kept = None
                with contextlib.suppress(Exception):
                    await conn.close()
            else:
                with contextlib.suppress(Exception):
                    await conn.rollback()
            raise

    async def close(self) -> None:
        if self._kept is not None:
            conn, self._kept = self._kept, None
            with contextlib.suppress(Exception):
                await conn.close()


def _succeed(waiting: _Waiting, result: StoreResult) -> None:
    if not waiting.answer.done():
        waiting.answer.set_result(result)


def _fail(waiting: _Waiting, err: BaseException) -> None:
    if not waiting.answer.done():
        waiting.answer.set_exception(err)


_writers: weakref.WeakKeyDictionary[Database, InboxWriter] = weakref.WeakKeyDictionary()


def writer_for(db: Database) -> InboxWriter:
    """The one inbox writer of ``db`` (made on first use)."""
    writer = _writers.get(db)
    if writer is None:
        writer = _writers[db] = InboxWriter(db)
    return writer


async def claim(session: AsyncSession, limit: int) -> Sequence[InboxAlert]:
    """Unprocessed rows, oldest first, locked for this transaction where the database can.

    While webhooks are arriving the engine is paced (``ENGINE_SHARE_UNDER_INGEST``) and takes
    small batches (``ENGINE_BATCH_UNDER_INGEST``); on SQLite one row, because its transaction
    holds the write lock from its first row to its commit and every webhook waits for that.
    """
    dialect = session.get_bind().dialect.name
    db = session.info.get(DATABASE_KEY)
    writer = _writers.get(db) if isinstance(db, Database) else None
    if writer is not None:
        await writer.pace_engine()
        if writer.busy:
            limit = min(limit, ENGINE_BATCH_UNDER_INGEST.get(dialect, limit))
    query = (
        select(InboxAlert)
        .where(InboxAlert.processed_at.is_(None))
        .order_by(InboxAlert.id)
        .limit(limit)
    )
    if dialect == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return (await session.scalars(query)).all()


@dataclass(frozen=True, slots=True)
class Processed:
    """The outcome of one claimed row."""

    row_id: int
    at: datetime
    outcome: str
    incident_id: int | None


async def mark_processed(session: AsyncSession, processed: Sequence[Processed]) -> None:
    """Record the outcomes of claimed rows: one executemany for the whole batch.

    A Core UPDATE leaves the session alone, so its copies of the rows are updated by hand (the
    ORM's own "evaluate" of an UPDATE scanned every object the session holds, per row:
    quadratic in the batch, 10% of the server's CPU at 200-row batches).
    """
    if not processed:
        return
    table = InboxAlert.__table__
    assert isinstance(table, Table)
    # On the session's connection, as Core: an ORM UPDATE with a list of parameters would be
    # SQLAlchemy's "bulk update by primary key", which takes no WHERE of its own.
    connection = await session.connection()
    await connection.execute(
        update(table)
        .where(table.c.id == bindparam("p_row_id"))
        .values(
            processed_at=bindparam("p_at"),
            outcome=bindparam("p_outcome"),
            incident_id=bindparam("p_incident_id"),
        ),
        [
            {
                "p_row_id": p.row_id,
                "p_at": p.at,
                "p_outcome": p.outcome,
                "p_incident_id": p.incident_id,
            }
            for p in processed
        ],
    )
    identity_map = session.sync_session.identity_map
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
    return await session.scalar(
        select(func.min(InboxAlert.received_at)).where(InboxAlert.processed_at.is_(None))
    )


async def count_unprocessed(session: AsyncSession) -> int:
    return int(
        await session.scalar(
            select(func.count()).select_from(InboxAlert).where(InboxAlert.processed_at.is_(None))
        )
        or 0
    )


def _unique_states(alerts: Sequence[Alert]) -> list[Alert]:
    """One row per (fingerprint, startsAt, status) even if the payload repeats an alert."""
    seen: dict[tuple[str, datetime, str], Alert] = {}
    for alert in alerts:
        seen.setdefault((alert.fingerprint, alert.starts_at, alert.status.value), alert)
    return list(seen.values())


def _row(alert: Alert, batch: AlertBatch, now: datetime) -> dict[str, Any]:
    return _alert_row(alert) | _webhook_row(batch, now)


def _alert_row(alert: Alert) -> dict[str, Any]:
    return {
        "source": alert.source.value,
        "fingerprint": alert.fingerprint,
        "status": alert.status.value,
        "starts_at": alert.starts_at,
        "ends_at": alert.ends_at,
        "labels": alert.labels,
        "annotations": alert.annotations,
        "generator_url": alert.generator_url,
    }


# Columns whose values are the same for every alert of one webhook.
_PER_WEBHOOK = (
    "group_key",
    "truncated_alerts",
    "received_at",
    "processed_at",
    "incident_id",
    "outcome",
)


def _webhook_row(batch: AlertBatch, now: datetime) -> dict[str, Any]:
    return {
        "group_key": batch.group_key,
        "truncated_alerts": batch.truncated_alerts,
        "received_at": now,
        "processed_at": None,
        "incident_id": None,
        "outcome": None,
    }


def _json_text(value: Any) -> str:
    """Labels and annotations as JSON text, with orjson: five times faster than the stdlib
    encoder, which was a tenth of a stored alert's CPU. They are string-to-string maps (the wire
    models checked), which orjson writes as exactly the JSON values the stdlib reads back."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # orjson.JSONEncodeError: something only the stdlib can write
        return json.dumps(value)


def _converted(
    processors: list[tuple[str, Callable[[Any], Any] | None]], row: dict[str, Any]
) -> list[Any]:
    """Values as SQLAlchemy's column types would bind them (None stays None)."""
    return [
        row[name] if process is None or row[name] is None else process(row[name])
        for name, process in processors
    ]


__all__ = [
    "InboxWriter",
    "Processed",
    "StoreResult",
    "claim",
    "count_unprocessed",
    "mark_processed",
    "oldest_unprocessed",
    "resolved_state_exists",
    "store_batch",
    "writer_for",
]
