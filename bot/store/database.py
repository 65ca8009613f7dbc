"""The database connection: engine, sessions, migrations, and SQLite's housekeeping.

SQLite runs in WAL mode with ``wal_autocheckpoint`` off on every connection; a background task
checkpoints instead, so no webhook request pays for a checkpoint (it dominated the p99).
PostgreSQL runs migrations under an advisory lock so replicas starting together do not race.

SQLite has one write lock per file, and a writer that finds it taken sleeps in SQLite's busy
handler (naps of 1, 2, 5, 10 … 100 ms) instead of being told when it is free: under a webhook
storm that turned a 2 ms wait into 30 ms and starved rare writers for seconds. So this process
keeps an in-process twin of that lock, the *write gate*: a connection takes it just before its
first INSERT/UPDATE/DELETE (when SQLite would take the real one) and gives it back when it
returns to the pool (or, for a connection kept in autocommit, as its statement returns:
:meth:`Database.hand_on_gate`); waiters queue in order and are handed the gate the moment it
is free.
Waiting longer than the busy timeout raises "database is locked", as SQLite would.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import event, inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session, SessionTransaction
from sqlalchemy.util import await_only
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_delay,
    wait_exponential_jitter,
)

from bot.runtime.worker import WorkerLoop
from bot.store import sqlite_driver, stored_json
from bot.store.pool_liveness import watch_liveness
from bot.store.transient import Transience, classify, reason

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")
# Any constant will do; it only has to be the same in every replica.
MIGRATION_LOCK_ID = 0x42A11A57
# Session.info key: the Database a session belongs to (the inbox looks at its webhook load).
DATABASE_KEY = "ballast.database"
# Connection.info key: this DBAPI connection holds the write gate.
_GATE_HELD = "ballast.write_gate_held"
BUSY_TIMEOUT_SECONDS = 30.0
# How long a starting server keeps trying to migrate while PostgreSQL is away; then it exits
# (and its supervisor starts it again). Well inside a readiness probe's patience.
STARTUP_PATIENCE_SECONDS = 30.0
# A checkpoint that has to wait longer than this for readers gives up and tries next time.
CHECKPOINT_BUSY_MS = 100
_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLAC")
# Session.info key: callbacks to run the moment the session's transaction commits.
_ON_COMMIT = "ballast.on_commit"


class _Session(Session):
    """The sessions of :class:`Database`: their own class, so that the commit hook below is
    theirs alone."""


def on_commit(session: AsyncSession, callback: Callable[[], None]) -> None:
    """Run ``callback`` the moment ``session``'s transaction has committed: in the same step
    of its task as the COMMIT's return, before the session closes and before any other task
    runs. What the commit made true can then be served at once (the OFREP copy takes a
    control's new value before the next evaluation is answered, not after the session's
    cleanup let one more through with the old value). Registered inside a savepoint, it is
    dropped if that savepoint rolls back; any rollback of the transaction drops it.
    A callback must not fail; one that does is logged, and the others still run."""
    sync = session.sync_session
    within = sync.get_nested_transaction() or sync.get_transaction()
    if within is None:
        raise RuntimeError("on_commit needs a session in a transaction")
    sync.info.setdefault(_ON_COMMIT, []).append((within, callback))


@event.listens_for(_Session, "after_commit")
def _run_on_commit(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint released: what it registered waits for the real commit
    for _, callback in session.info.pop(_ON_COMMIT, ()):
        try:
            callback()
        except Exception:
            log.exception("a callback after a commit failed")


@event.listens_for(_Session, "after_soft_rollback")
def _drop_rolled_back(session: Session, previous_transaction: SessionTransaction) -> None:
    pending = session.info.get(_ON_COMMIT)
    if pending:
        session.info[_ON_COMMIT] = [
            (within, callback)
            for within, callback in pending
            if not _inside(within, previous_transaction)
        ]


def _inside(transaction: SessionTransaction | None, outer: SessionTransaction) -> bool:
    while transaction is not None:
        if transaction is outer:
            return True
        transaction = transaction.parent
    return False


class WriteGate:
    """A FIFO lock handed straight to the next waiter on release (no polling, no barging)."""

    def __init__(self, patience: float = BUSY_TIMEOUT_SECONDS) -> None:
        self.patience = patience  # how long a waiter waits before "database is locked"
        self._held = False
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    def try_acquire(self) -> bool:
        if self._held:
            return False
        self._held = True
        return True

    async def acquire(self) -> None:
        if self.try_acquire():
            return
        handed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(handed)
        try:
            async with asyncio.timeout(self.patience):
                await handed
        except BaseException:
            if handed.done() and not handed.cancelled():
                self.release()  # handed over just as we gave up: pass it on
            else:
                handed.cancel()
                with contextlib.suppress(ValueError):
                    self._waiters.remove(handed)
            raise

    def release(self) -> None:
        while self._waiters:
            handed = self._waiters.popleft()
            if not handed.done():
                handed.set_result(None)  # ownership moves; _held stays True
                return
        self._held = False


class Database:
    """Owns the SQLAlchemy engine. Built once by ``bot.app``; closed on shutdown."""

    def __init__(
        self, url: str, *, echo: bool = False, connect_args: dict[str, Any] | None = None
    ) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        # SQLite through bot.store.sqlite_driver: one thread hop per statement, none once the
        # write lock is held, and isolation-level switches without one while idle.
        self.one_hop_sqlite = False
        options: dict[str, Any] = {"echo": echo, "json_deserializer": stored_json.loads}
        if self.is_sqlite:
            _ensure_sqlite_folder(url)
            options["connect_args"] = {"timeout": 30, **(connect_args or {})}
            one_hop = sqlite_driver.dbapi() if url.startswith("sqlite+aiosqlite") else None
            if one_hop is not None:
                options["module"] = one_hop  # one thread hop per statement, not four
                self.one_hop_sqlite = True
        else:
            # Most recently used first, so that a few connections take a quiet server's work
            # and stay within pool_liveness's no-ping window; the ping is its own (not
            # pool_pre_ping's three round trips on every checkout).
            options.update(pool_size=10, max_overflow=10, pool_use_lifo=True)
            options["connect_args"] = connect_args or {}
        self.engine: AsyncEngine = create_async_engine(url, **options)
        if not self.is_sqlite:
            watch_liveness(self.engine)
        self.gate = WriteGate()
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
            event.listen(self.engine.sync_engine, "before_cursor_execute", self._gate_writes)
            for name in ("checkin", "close", "detach", "invalidate"):
                event.listen(self.engine.sync_engine.pool, name, self._ungate)
        self.sessions = async_sessionmaker(
            self.engine,
            expire_on_commit=False,
            info={DATABASE_KEY: self},
            sync_session_class=_Session,
        )
        # Reads outside any transaction on PostgreSQL (see ``reads``); the same pool.
        self._reads = async_sessionmaker(
            self.engine
            if self.is_sqlite
            else self.engine.execution_options(isolation_level="AUTOCOMMIT"),
            expire_on_commit=False,
            info={DATABASE_KEY: self},
        )
        self._checkpointer: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        # Names this Database (one per replica) in its PostgreSQL notifications, so that its own
        # change feed skips what this replica already applied (bot/store/notifications.py).
        self.origin = uuid.uuid4().hex[:16]

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session in one transaction: committed on success, rolled back on any error."""
        async with self.sessions() as session, session.begin():
            yield session

    @contextlib.asynccontextmanager
    async def reads(self) -> AsyncIterator[AsyncSession]:
        """A session for SELECTs only, on PostgreSQL in autocommit: no BEGIN and ROLLBACK round
        trips around them. Under PostgreSQL's READ COMMITTED every statement of a transaction
        takes its own snapshot anyway, so the rows read are the same; nothing is locked or
        written (a write would be committed at once: use ``transaction``)."""
        async with self._reads() as session:
            yield session

    @contextlib.asynccontextmanager
    async def gated(self) -> AsyncIterator[None]:
        """Hold the write gate (SQLite; a no-op for PostgreSQL, which has row locks)."""
        if not self.is_sqlite:
            yield
            return
        await self.gate.acquire()
        try:
            yield
        finally:
            self.gate.release()

    def _gate_writes(self, conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        """Before a statement that takes SQLite's write lock, take the gate (once per checkout)."""
        if statement.lstrip()[:6].upper() not in _WRITES or conn.info.get(_GATE_HELD):
            return
        try:
            if not self.gate.try_acquire():
                await_only(self.gate.acquire())
        except TimeoutError:
            locked = sqlite3.OperationalError("database is locked")
            raise OperationalError(statement, None, locked) from None
        conn.info[_GATE_HELD] = True

    def _ungate(self, _dbapi_connection: Any, record: Any, *_: Any) -> None:
        """The connection went back to the pool (or away): its transaction is over."""
        if record is not None and record.info.pop(_GATE_HELD, None):
            self.gate.release()

    def hand_on_gate(self, conn: AsyncConnection) -> None:
        """``conn``'s transaction is over though it stays checked out (the inbox writer's kept
        connection in autocommit: each statement commits itself): the write gate goes on."""
        try:
            held = conn.info.pop(_GATE_HELD, None)
        except Exception:  # closed or invalidated: the pool's events handed it on
            return
        if held:
            self.gate.release()

    def own(self, task: asyncio.Task[Any]) -> None:
        """Cancel ``task`` when the database closes (background writers of the store layer)."""
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def migrate(self) -> tuple[str | None, str | None]:
        """Bring the schema to the newest Alembic revision; returns (before, after) revisions.

        On PostgreSQL the whole upgrade holds a transaction-scoped advisory lock, so replicas
        starting together (or a ``ballast db upgrade`` beside running servers) migrate one at a
        time: the first does the work, the others wait, then find the schema at head.
        """
        async with self.engine.begin() as conn:
            if not self.is_sqlite:
                await conn.execute(
                    text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID}
                )
            before = await conn.run_sync(_current_revision)
            await conn.run_sync(_upgrade)
            after = await conn.run_sync(_current_revision)
        return before, after

    async def migrate_at_start(
        self, patience: float = STARTUP_PATIENCE_SECONDS
    ) -> tuple[str | None, str | None]:
        """:meth:`migrate`, made again while PostgreSQL is away (a connection the server
        terminated, a failover, too many connections) for up to ``patience`` seconds, with a
        warning each time: a replica restarting while the database drops connections must
        still start (under chaos in CI a restarting replica exited in its start-up; a
        migration's transaction, idle while Alembic works, is the first a terminator picks).

        Safe to repeat: the whole upgrade is one PostgreSQL transaction (DDL included) under a
        transaction-scoped lock, so a failed attempt left nothing behind. SQLite is not retried:
        its only such trouble is the file's lock held past the 30 s busy timeout by another
        process, and every other error sqlite3 raises as OperationalError (a statement error
        in a migration too) would be retried for nothing."""

        if self.is_sqlite:
            return await self.migrate()

        def away(err: BaseException) -> bool:
            return classify(err) is Transience.UNAVAILABLE

        def warn(state: RetryCallState) -> None:
            err = state.outcome.exception() if state.outcome else None
            log.warning(
                "migrating the database at start failed (%s: %s); trying again in %.1f s",
                reason(err) if err is not None else "?",
                err,
                state.upcoming_sleep,
            )

        retrying = AsyncRetrying(
            retry=retry_if_exception(away),
            stop=stop_after_delay(patience),
            wait=wait_exponential_jitter(multiplier=0.2, max=5.0),
            before_sleep=warn,
            reraise=True,
        )
        result: tuple[str | None, str | None] = await retrying(self.migrate)
        return result

    async def current_revision(self) -> str | None:
        """The schema's Alembic revision (None: an empty database); changes nothing."""
        async with self.engine.connect() as conn:
            return await conn.run_sync(_current_revision)

    def start_housekeeping(self, checkpoint_every: float = 1.0) -> None:
        """Start the background checkpoint (SQLite). Called by the server once it is built."""
        if self.is_sqlite and self._checkpointer is None:
            loop = WorkerLoop(
                self.checkpoint,
                poll_interval=checkpoint_every,
                log=log,
                failure="background WAL checkpoint failed; will retry",
                rest_first=True,
            )
            self._checkpointer = asyncio.create_task(loop.run(), name="sqlite-checkpoint")

    async def checkpoint(self) -> None:
        """Move WAL pages into the main file, then let the WAL start over from its beginning.

        A PASSIVE checkpoint alone never lets the WAL restart while writes keep coming (a new
        frame always lands between the copy and the next writer), so under steady load the file
        grew by hundreds of MiB, which also slows the WAL recovery after a crash. So: PASSIVE
        first, concurrently with everyone (it copies nearly everything), then RESTART under the
        write gate, which copies the last few frames and rewinds the WAL. Both run on a private
        connection in a thread, with a short busy timeout so a reader can only make it skip.
        """
        if not self.is_sqlite:
            return
        path = sqlite_path(self.url)
        if not path or path == ":memory:":
            return
        await asyncio.to_thread(_checkpoint, path, "PASSIVE")
        async with self.gated():
            await asyncio.to_thread(_checkpoint, path, "RESTART")

    async def sync_wal(self, database_file: str) -> None:
        """SQLite: make every commit so far to ``database_file`` (SQLite's own path of it,
        ``PRAGMA database_list``) durable, as ``synchronous=FULL`` does at each commit: one
        ``fdatasync`` of its WAL file, on a thread, outside SQLite's write lock.

        For a writer that committed with ``synchronous=NORMAL`` (the inbox writer): its commit
        released the write lock without waiting for the disk, so the next writer (the engine,
        on the alert just stored) starts while this waits; the writer answers its requests
        only once this returns. A WAL is append-only between checkpoints, so one sync covers
        every frame written before it, the commit's included; a checkpoint that copied those
        frames first synced the database file itself. The WAL file carries none of SQLite's
        locks (those are on the database and ``-shm`` files), so opening and closing it here
        releases none. ``""`` (a database without a file) and a WAL that is gone (below) have
        nothing to sync; any other ``OSError`` is raised as it is (the webhooks get 503).
        """
        if self.is_sqlite and database_file:
            await asyncio.to_thread(_sync_file, database_file + "-wal")

    async def close(self) -> None:
        tasks = [*self._tasks, *([self._checkpointer] if self._checkpointer else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._checkpointer = None
        await self.engine.dispose()


def _checkpoint(path: str, mode: str) -> None:
    conn = sqlite3.connect(path, timeout=CHECKPOINT_BUSY_MS / 1000, isolation_level=None)
    try:
        conn.execute(f"PRAGMA busy_timeout={CHECKPOINT_BUSY_MS}")
        conn.execute(f"PRAGMA wal_checkpoint({mode})").fetchall()
    finally:
        conn.close()


def _sync_file(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        # No WAL: the last connection to close copied it into the database file (a checkpoint,
        # which syncs that file) and deleted it, or nothing was written since. Nothing to sync.
        return
    try:
        _datasync(fd)
    finally:
        os.close(fd)


# fdatasync where the system has it (Linux, as SQLite uses there), else fsync.
_datasync: Callable[[int], None] = getattr(os, "fdatasync", os.fsync)


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str | None:
    """The newest revision this version of Ballast knows."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def _upgrade(connection: Connection) -> None:
    command.upgrade(alembic_config(connection), "head")


def _current_revision(connection: Connection) -> str | None:
    """Read ``alembic_version`` directly: a MigrationContext would log two more INFO lines."""
    if not inspect(connection).has_table("alembic_version"):
        return None
    revision = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    return None if revision is None else str(revision)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # FULL: a committed (acknowledged) alert survives power loss, not only a crash.
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA wal_autocheckpoint=0")
    cursor.close()


def sqlite_path(url: str) -> str:
    return url.split(":///", 1)[-1].split("?", 1)[0]


def _ensure_sqlite_folder(url: str) -> None:
    path = sqlite_path(url)
    if path and path != ":memory:":
        Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
