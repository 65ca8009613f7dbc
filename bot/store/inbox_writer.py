"""Group commit for webhooks: the batches of every webhook waiting at the same moment, one INSERT.

One statement, one commit, one fsync and one hand-over of SQLite's write lock for many requests
instead of one each. The rows RETURNING gives back are counted to the request that sent them,
so each receipt counts exactly its own new and duplicate alerts, and a request is answered only
once the statement holding its rows has committed. The writer reports its commits to its
:class:`~bot.store.ingest_pacing.IngestPacing`, which keeps the incident engine to small, paced
batches while a storm lasts. The statement itself is hand-built driver SQL
(:mod:`bot.store.inbox_sql`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.intake.alert import AlertBatch
from bot.store.database import Database
from bot.store.inbox import StoreResult
from bot.store.inbox_sql import InsertPlan
from bot.store.ingest_pacing import IngestPacing
from bot.store.transient import is_unavailable

log = logging.getLogger(__name__)

# Requests and rows per group: bound how long one commit holds the write lock. A group of at
# most MAX_GROUP_ROWS rows is one INSERT statement (a single request may exceed it alone).
MAX_GROUP = 64
MAX_GROUP_ROWS = 1000
# Writer tasks on PostgreSQL (SQLite has one: its writes are serialised anyway).
POSTGRES_WRITERS = 4


@dataclass(slots=True)
class _Waiting:
    batch: AlertBatch
    now: datetime
    answer: asyncio.Future[StoreResult]
    traceparent: str | None


class InboxWriter:
    """Group commit for the webhooks of one database (see the module docstring).

    Background tasks write (one on SQLite, whose writes are serialised anyway; a few on
    PostgreSQL, so a commit's round trips overlap the next group's); a request queues its batch
    and waits for its receipt. A request that stopped waiting (its webhook already answered
    503) is dropped before it is written: an overloaded server sheds work instead of storing
    what the sender will send again.
    """

    def __init__(self, db: Database) -> None:
        """One per database, built by the server (``bot.app``) with the rest of its parts."""
        self._db = db
        self._queue: deque[_Waiting] = deque()
        self._kick: asyncio.Event | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._writing = 0
        self.pacing = IngestPacing(lambda: bool(self._queue or self._writing), db.dialect)
        self._on_stored: list[Callable[[], None]] = []

    def when_stored(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` the moment a group that stored new rows has committed (the
        incident engine's wake), before its requests are answered."""
        self._on_stored.append(listener)

    async def store(
        self, batch: AlertBatch, now: datetime, *, traceparent: str | None = None
    ) -> StoreResult:
        """Store ``batch``; returns once it is committed and durable (raises what the commit or
        its sync raised).

        ``traceparent``: the webhook's trace context, kept with each row (``bot.telemetry``).
        """
        if not batch.alerts:
            return StoreResult(0, 0)
        loop = asyncio.get_running_loop()
        if self._kick is None or not any(not task.done() for task in self._tasks):
            self._start(loop)
        assert self._kick is not None
        answer: asyncio.Future[StoreResult] = loop.create_future()
        self._queue.append(_Waiting(batch, now, answer, traceparent))
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
                    if not self._writing:
                        self.pacing.webhooks_written()  # the engine may start a lane now
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
                        outcomes = await self._write_group(group, connection)
                    finally:
                        self._writing -= 1
                    if not self._queue and not self._writing:
                        self.pacing.webhooks_written()  # the engine may start while we sync
                    await self._answer(outcomes, connection)
        finally:
            # Writers stop together, when the database closes: nobody is left to write these.
            stopped = TimeoutError("the inbox writer stopped (shutting down)")
            for waiting in self._queue:
                _fail(waiting, stopped)
            self._queue.clear()
            await connection.close()

    async def _write_group(
        self, group: list[_Waiting], connection: _Connection
    ) -> list[tuple[_Waiting, StoreResult | Exception]]:
        """Write the group; what each request is to be answered (by :meth:`_answer`)."""
        try:
            results = await self._write(group, connection)
        except asyncio.CancelledError:
            for waiting in group:
                _fail(waiting, TimeoutError("the inbox writer stopped (shutting down)"))
            raise
        except Exception as err:
            # The database is busy or away: every request of the group gets that answer (503).
            if len(group) == 1 or is_unavailable(err):
                return [(waiting, err) for waiting in group]
            # Perhaps one request's rows broke the transaction: write each on its own, so
            # only that request fails.
            outcomes: list[tuple[_Waiting, StoreResult | Exception]] = []
            for waiting in group:
                try:
                    (result,) = await self._write([waiting], connection)
                except Exception as single:
                    outcomes.append((waiting, single))
                else:
                    outcomes.append((waiting, result))
            return outcomes
        return list(zip(group, results, strict=True))

    async def _answer(
        self, outcomes: list[tuple[_Waiting, StoreResult | Exception]], connection: _Connection
    ) -> None:
        """Answer each request once what was committed for it is durable: on SQLite, once the
        commit's sync (:meth:`_Connection.durable`) is done. A failed sync fails them all."""
        try:
            await connection.durable()
        except asyncio.CancelledError:
            for waiting, _ in outcomes:
                _fail(waiting, TimeoutError("the inbox writer stopped (shutting down)"))
            raise
        except Exception as err:
            for waiting, _ in outcomes:
                _fail(waiting, err)
            return
        for waiting, outcome in outcomes:
            if isinstance(outcome, Exception):
                _fail(waiting, outcome)
            else:
                _succeed(waiting, outcome)

    async def _write(self, group: list[_Waiting], connection: _Connection) -> list[StoreResult]:
        """One INSERT for the whole group, its RETURNING rows counted back to each request.

        An alert state sent by two requests of the group belongs to the first (the second got
        it as a duplicate, as if they had been written one after the other). The statement is
        the driver's own SQL with values converted by the columns' SQLAlchemy types (see
        ``bot.store.inbox_sql``): per group, SQLAlchemy's compile, executemany batching and
        result typing cost more CPU than the database's work. Rows go in key order, so concurrent
        groups on PostgreSQL take index locks in the same order and cannot deadlock.
        """
        plan = InsertPlan.of(self._db.engine.dialect)
        owner: dict[tuple[Any, ...], int] = {}
        keyed: list[tuple[tuple[Any, ...], list[Any]]] = []
        for index, waiting in enumerate(group):
            for values in plan.rows(waiting.batch, waiting.now, waiting.traceparent):
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
        self.pacing.committed(len(rows))
        if any(stored):
            for listener in self._on_stored:
                try:
                    listener()  # the engine starts on the rows while they are synced
                except Exception:  # the rows are stored: the engine's poll finds them
                    log.exception("a listener of stored alerts failed")
        return [StoreResult(len(w.batch.alerts), n) for w, n in zip(group, stored, strict=True)]


class _Connection:
    """The connection a writer task uses for its transactions.

    SQLite: a group that is one INSERT statement runs on a kept connection in autocommit
    (the statement commits itself; a webhook's few rows inline, a larger group in one thread
    hop), which hands the write gate on as the statement returns, and with
    ``synchronous=NORMAL``: its commit lets go of the write lock without waiting for the
    disk, and :meth:`durable` then syncs the WAL, outside the lock, before the group's
    requests are answered. That connection never goes back to the pool (it is closed with
    the writer), so no other transaction commits without its fsync; checking a pooled one
    out and in per group (the isolation level and ``synchronous`` switched there and back)
    cost more CPU than the INSERT. The fsync is the
    same one FULL makes at the commit (about a millisecond on these machines); only now the
    engine, woken by the commit, processes the alert meanwhile instead of waiting for the
    lock (issue 16). A crash before the sync loses nothing that was answered.

    PostgreSQL, the same idea: a group that is one INSERT statement runs on a kept connection
    in autocommit (one round trip instead of four: pool pre-ping, BEGIN, INSERT, COMMIT) with
    ``synchronous_commit = off``, so the statement returns, and the engine is woken, without
    waiting for PostgreSQL's WAL flush; :meth:`durable` then sends one statement that commits
    a transaction of its own at the server's configured level (:data:`_FLUSH`), which flushes
    the WAL up to its commit record, the INSERT's commit before it included (and waits for
    synchronous standbys the same way), before the group's requests are answered. The engine
    processes the alert meanwhile; its own commit, at the configured level, is later in the
    WAL, so it can never be durable without the alert's row. A server crash before the flush
    loses nothing that was answered (``tests/store/test_inbox_flush_crash.py``: a private
    PostgreSQL whose every process is SIGKILLed, its WAL writer frozen before). Where the
    server is configured with ``synchronous_commit = off`` already, or refuses the flush's
    statement (probed once), the INSERTs commit as the server says and nothing is flushed.
    Several writers' flushes that coincide share one fsync. A broken connection fails its
    group (503: the sender retries) and the next group opens a fresh one; a kept connection
    never goes back to the pool. A larger group takes an ordinary pooled transaction, durable
    when it returns.
    """

    def __init__(self, db: Database) -> None:
        self._db = db
        self._kept: AsyncConnection | None = None
        self._owes_sync = False  # a commit was made without its sync (or flush)
        self._database_file: str | None = None  # SQLite's own path of the file (once read)
        # PostgreSQL: read once, on the first kept connection. The synchronous_commit the
        # server configures for our connections, which the flush commits with; None when
        # the INSERTs commit synchronously (configured off, or the flush refused).
        self._probed = False
        self._flush_level: str | None = None

    @contextlib.asynccontextmanager
    async def transaction(self, *, single_statement: bool) -> AsyncIterator[AsyncConnection]:
        if self._db.one_hop_sqlite and single_statement:
            # Autocommit on the kept connection: the INSERT is its own transaction, committed
            # by its own call (inline while the lock is free: bot.store.sqlite_driver), and the
            # write gate goes on as it returns. synchronous=NORMAL stays on this connection,
            # which the pool never hands to anyone else.
            conn = await self._kept_connection()
            self._owes_sync = True
            try:
                yield conn
                await conn.commit()  # ends SQLAlchemy's bookkeeping; SQLite already did
            except BaseException:
                if conn.invalidated or conn.closed:
                    self._kept = None
                raise
            finally:
                self._db.hand_on_gate(conn)
            return
        if self._db.is_sqlite or not single_statement:
            async with self._db.engine.begin() as conn:
                yield conn
            return
        conn = await self._kept_connection()
        try:
            yield conn
            if self._flush_level is not None:
                self._owes_sync = True
            await conn.commit()  # ends SQLAlchemy's bookkeeping; the database already did
        except BaseException:
            await self._after_postgres_error(conn)
            raise

    async def _kept_connection(self) -> AsyncConnection:
        """The writer's own connection in autocommit, made once (again after a broken one)
        and set up for its dialect's commits without the disk (see above); dropped, never
        pooled, if that set-up fails."""
        if self._kept is not None:
            return self._kept
        conn = await self._db.engine.connect()
        try:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            if self._db.is_sqlite:
                await self._set_up_sqlite(conn)
            else:
                await self._set_up_postgres(conn)
        except BaseException:
            await _drop(conn)
            raise
        self._kept = conn
        return conn

    async def _set_up_postgres(self, conn: AsyncConnection) -> None:
        if not self._probed:
            await self._probe(conn)
        if self._flush_level is not None:
            await conn.exec_driver_sql("SET synchronous_commit = off")

    async def _probe(self, conn: AsyncConnection) -> None:
        """Read the configured level and flush once: a server that refuses the flush's
        statement (its function revoked, a proxy that filters it) keeps synchronous commits,
        as does one configured to commit asynchronously anyway."""
        level = str((await conn.exec_driver_sql("SHOW synchronous_commit")).scalar_one())
        if level != "off":
            try:
                await conn.exec_driver_sql(_FLUSH, (level,))
            except DBAPIError as err:
                if is_unavailable(err):
                    raise
                log.warning(
                    "PostgreSQL refused the inbox's WAL flush statement (%s); webhooks' "
                    "INSERTs commit synchronously instead",
                    err.orig,
                )
                level = "off"
        self._flush_level = None if level == "off" else level
        self._probed = True

    async def _after_postgres_error(self, conn: AsyncConnection) -> None:
        if conn.invalidated or conn.closed:
            self._kept = None
            await _drop(conn)
        else:
            with contextlib.suppress(Exception):
                await conn.rollback()

    async def _set_up_sqlite(self, conn: AsyncConnection) -> None:
        # The file as SQLite opened it (whatever form the URL took); "" for a database with
        # no file, which has nothing to sync.
        listed = await conn.exec_driver_sql("PRAGMA database_list")
        main = [row["file"] for row in listed.mappings() if row["name"] == "main"]
        self._database_file = str(main[0] or "") if main else ""
        await conn.exec_driver_sql("PRAGMA synchronous=NORMAL")

    async def durable(self) -> None:
        """Sync (SQLite) or flush (PostgreSQL) what was committed without it (see above);
        nothing to do otherwise. Until one succeeds, every group owes one: none is answered
        before its rows are durable. The flush may go on another connection than the commit
        it covers: PostgreSQL's WAL is one, flushed in order."""
        if not self._owes_sync:
            return
        if self._db.is_sqlite:
            await self._db.sync_wal(self._database_file or "")
        else:
            conn = await self._kept_connection()
            try:
                await conn.exec_driver_sql(_FLUSH, (self._flush_level,))
                await conn.commit()
            except BaseException:
                await self._after_postgres_error(conn)
                raise
        self._owes_sync = False

    async def close(self) -> None:
        if self._kept is not None:
            conn, self._kept = self._kept, None
            # Never back into the pool: its commits do not wait for the disk (SQLite's
            # synchronous=NORMAL, PostgreSQL's synchronous_commit off).
            await _drop(conn)


# One statement, its own transaction in autocommit: the configured synchronous_commit for
# this transaction only, and a WAL record that takes an xid (a transactional logical message,
# empty, which logical decoding passes on only to consumers that ask for messages). A
# transaction that wrote no WAL, or has no xid, commits without flushing: `txid_current()`
# alone is not enough (tests/store/test_inbox_flush_crash.py showed it). Committing then
# flushes the WAL up to its commit record (and, configured so, waits for synchronous standbys).
_FLUSH = (
    "SELECT set_config('synchronous_commit', $1, true), "
    "pg_logical_emit_message(true, 'ballast.inbox.flush', '')"
)


async def _drop(conn: AsyncConnection) -> None:
    """Close ``conn``'s database connection instead of handing it back to the pool."""
    with contextlib.suppress(Exception):
        await conn.invalidate()
    with contextlib.suppress(Exception):
        await conn.close()


def _succeed(waiting: _Waiting, result: StoreResult) -> None:
    if not waiting.answer.done():
        waiting.answer.set_result(result)


def _fail(waiting: _Waiting, err: BaseException) -> None:
    if not waiting.answer.done():
        waiting.answer.set_exception(err)


__all__ = ["MAX_GROUP", "MAX_GROUP_ROWS", "InboxWriter"]
