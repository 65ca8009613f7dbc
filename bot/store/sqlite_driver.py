"""SQLAlchemy's aiosqlite adapter, with one thread hop per statement instead of four.

aiosqlite runs each sqlite3 call on its own thread and hands the result back to the event
loop: SQLAlchemy's adapter makes four such calls per statement (open a cursor, execute, fetch
the rows, close the cursor), and each is a wake-up of the loop, a turn for whatever else is
ready (OFREP evaluations, webhooks) and a context switch. Measured on a busy 2-core machine, a
one-row SELECT through the stock adapter took 218 µs, through this one 118 µs (raw sqlite3:
8 µs); the path from an alert to its mitigation is a few dozen statements (docs/benchmarks.md).

Here ``execute`` sends one function to the connection's thread that opens a cursor, executes,
fetches every row (as the stock adapter does for any statement with rows) and closes it, and
answers description, rowcount, lastrowid and rows together. Everything else (connections,
transactions, the isolation level, server-side cursors, errors) is SQLAlchemy's and aiosqlite's
own. It uses aiosqlite's ``Connection._execute`` (queue a call on the connection's thread);
SQLAlchemy's adapter already reaches into that queue for the isolation level. If a release of
aiosqlite drops it, :func:`dbapi` answers None and the stock adapter is used.

**No hop at all once the transaction holds SQLite's write lock.** The thread is there so that a
statement waiting for a lock (``busy_timeout``: up to 30 s while another process writes) or for
the disk (the fsync of a COMMIT) never stops the event loop. Once a transaction's first
INSERT, UPDATE or DELETE has succeeded, the connection holds the database's write lock until
COMMIT or ROLLBACK: nobody can make its next statements wait, and they touch pages in memory
(WAL mode writes to disk at COMMIT). So from then on ``execute`` runs SELECT, INSERT, UPDATE,
DELETE and WITH statements directly on the event loop's thread, microseconds each instead of a
loop turn each (in which an OFREP evaluation or a webhook goes first), and so do SAVEPOINT
and RELEASE inside it, except in a transaction that a SAVEPOINT began (its RELEASE is the
COMMIT). COMMIT and ROLLBACK (to a savepoint too) still go to the thread, and so does every
statement before the first write, which itself tries inline first (below); ``executemany``
follows the same rule as ``execute``. A COMMIT or ROLLBACK with no transaction open (the pool's
rollback of every connection it gets back) is sqlite3's no-op and skips the hop. The connection is
opened with ``check_same_thread=False`` for this; it is never used by both threads at once
(inline only while no call of this connection is queued or running on its thread, checked by
SQLAlchemy's own per-connection mutex). What Ballast writes in one transaction is bounded (a
batch of alerts, one incident's rows), so no inline statement holds the loop for long.

**The first write tries inline, without waiting.** The statement that begins SQLite's
transaction, when it is a write (the engine's claim of the write lock, the first statement of
most of Ballast's transactions), runs inline with ``busy_timeout`` 0 for its duration: when no
other connection holds the lock it is taken at once, a thread hop saved; when one does, SQLite
answers ``SQLITE_BUSY`` at once (and lets go of what the attempt took), sqlite3's BEGIN is
rolled back (nothing else is in the transaction) and the write goes to the thread, to wait
there as before. Not in autocommit, where such a write commits itself (an fsync), unless the
connection's commits wait for no disk (``PRAGMA synchronous`` NORMAL or OFF, as the inbox
writer sets it: in WAL mode its commit is an append to the WAL in the page cache) and the
statement is small (at most :data:`INLINE_AUTOCOMMIT_PARAMETERS` parameters: a webhook's few
alerts; a storm's large group keeps the thread, which on an unpinned machine writes beside the
loop).

**A commit that readers wait for may run on the loop.** :func:`commit_on_loop` marks the open
transaction: its COMMIT then runs inline, the fsync holding the loop (a few tenths of a
millisecond on an SSD), when nothing of the connection is queued on its thread. The incident
engine marks a transaction that wrote a first mitigation's control value while no storm is on:
on the thread, the loop would run whatever was ready meanwhile (the webhook's answer, an OFREP
evaluation answered with the old value) before the engine's next step could serve the new one.
A disk that stalls would stall the loop with it (every OFREP evaluation and webhook waiting):
an inline COMMIT that took longer than :data:`SLOW_INLINE_COMMIT_SECONDS` sends every COMMIT to
the thread for :data:`THREAD_AFTER_SLOW_COMMIT_SECONDS`.
"""

from __future__ import annotations

import collections
import logging
import re
import sqlite3
import time
from collections.abc import Callable, Sequence
from threading import Thread
from typing import Any, TypeVar, cast

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.util import await_only

log = logging.getLogger(__name__)

Description = tuple[tuple[Any, ...], ...] | None
T = TypeVar("T")


async def _on_thread(conn: aiosqlite.Connection, call: Callable[[], T]) -> T:
    """``call()`` on the connection's own thread (aiosqlite's queue), awaited."""
    answer: T = await conn._execute(call)  # type: ignore[no-untyped-call]
    return answer


# First words of the statements that may run inline while the write lock is held (see above).
_INLINE = frozenset({"SELECT", "INSERT", "UPDATE", "DELETE", "WITH", "SAVEPOINT", "RELEASE"})
# First words of the statements whose success means the transaction holds the write lock.
_WRITES = frozenset({"INSERT", "UPDATE", "DELETE", "REPLACE"})


# PRAGMAs that only set a flag of the connection (SQLAlchemy's isolation level reset, when the
# pool takes back a connection that ran in autocommit; the inbox writer's commit without a
# sync): no lock, no disk.
_FLAG_PRAGMAS = ("PRAGMA read_uncommitted", "PRAGMA synchronous")


def _sets_a_flag(operation: str) -> bool:
    return operation.lstrip().startswith(_FLAG_PRAGMAS)


# An autocommit write whose commit waits for no disk runs inline with at most this many
# parameters (the inbox writer's INSERT: about a dozen per alert).
INLINE_AUTOCOMMIT_PARAMETERS = 256
# An inline COMMIT slower than this (an fsync is a few tenths of a millisecond on an SSD) sends
# the marked ones to the thread again for a while: the disk is stalling, and the loop with it.
SLOW_INLINE_COMMIT_SECONDS = 0.02
THREAD_AFTER_SLOW_COMMIT_SECONDS = 60.0
_inline_commits_from = 0.0  # time.monotonic() from which a marked COMMIT may run inline
_SYNCHRONOUS = re.compile(r"\s*PRAGMA\s+(?:main\.)?synchronous\s*=\s*'?(\w+)'?\s*;?\s*", re.I)
_NO_SYNC_AT_COMMIT = frozenset({"OFF", "0", "NORMAL", "1"})


def _syncs_commits(operation: str) -> bool | None:
    """Whether ``operation`` makes the connection's commits sync the disk (``PRAGMA
    synchronous = ...``: FULL or EXTRA do, in WAL mode NORMAL and OFF do not); None for any
    other statement."""
    found = _SYNCHRONOUS.fullmatch(operation)
    if found is None:
        return None
    return found.group(1).upper() not in _NO_SYNC_AT_COMMIT


def _first_word(operation: str) -> str:
    return operation.lstrip()[:10].split(None, 1)[0].upper() if operation.strip() else ""


def _busy(err: sqlite3.OperationalError) -> bool:
    """SQLITE_BUSY or one of its extended codes: another connection holds a lock."""
    return (getattr(err, "sqlite_errorcode", 0) & 0xFF) == sqlite3.SQLITE_BUSY


def _run(
    raw: sqlite3.Connection, operation: Any, parameters: Any
) -> tuple[Description, int, int | None, list[Any]]:
    """One statement on ``raw``: what the cursor answers, every row fetched."""
    cursor = raw.cursor()
    try:
        if parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else []
        return description, cursor.rowcount, cursor.lastrowid, rows
    finally:
        cursor.close()


def _run_many(
    raw: sqlite3.Connection, operation: Any, seq_of_parameters: Sequence[Any]
) -> tuple[int, int | None]:
    cursor = raw.cursor()
    try:
        cursor.executemany(operation, seq_of_parameters)
        return cursor.rowcount, cursor.lastrowid
    finally:
        cursor.close()


class _Cursor(AsyncAdapt_aiosqlite_cursor):
    """A client-side cursor whose statement is one call on the connection's thread (or none,
    inline, while the transaction holds the write lock). Its rows are fetched with it, so
    nothing stays open on that thread between calls."""

    __slots__ = ("_description", "_lastrowid", "_rowcount")

    def __init__(self, adapt_connection: AsyncAdapt_aiosqlite_connection) -> None:
        # Not the stock __init__: that opens an aiosqlite cursor (a hop) for every statement.
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = None  # type: ignore[assignment]  # no aiosqlite cursor: see _execute_async
        self._soft_closed_memoized = {}  # type: ignore[assignment]
        self._rows = collections.deque()
        self._description: Description = None
        self._rowcount = -1
        self._lastrowid: int | None = None

    @property
    def description(self) -> Description:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> int:
        return self._lastrowid  # type: ignore[return-value]

    @property
    def arraysize(self) -> int:
        return 1

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        pass  # every row is fetched with the statement

    async def _async_soft_close(self) -> None:
        return  # nothing is open on the connection's thread

    def close(self) -> None:
        self._rows.clear()

    def execute(self, operation: Any, parameters: Any = None) -> Any:
        adapt = cast(_Connection, self._adapt_connection)
        word = _first_word(operation)
        if word == "SAVEPOINT" and not adapt.in_transaction():
            adapt.began_with_savepoint()
        super().execute(operation, parameters)  # raises what the statement raised
        if word in _WRITES:
            adapt.wrote()
        elif word == "PRAGMA":
            adapt.pragma_ran(operation)
        return None

    async def _execute_async(self, operation: Any, parameters: Any) -> Any:
        adapt = cast(_Connection, self._adapt_connection)
        word = _first_word(operation)
        answer = None
        if (word in _INLINE and adapt.holds_write_lock(release=word == "RELEASE")) or (
            word == "PRAGMA" and _sets_a_flag(operation) and adapt.idle()
        ):
            # Awaited without suspending: no loop turn (SQLAlchemy still sees an await).
            answer = _run(adapt.raw, operation, parameters)
        elif word in _WRITES and adapt.may_try_first_write(parameters):
            answer = adapt.first_write_unless_busy(operation, parameters)
        if answer is None:
            conn: aiosqlite.Connection = self._connection  # type: ignore[assignment]
            async with adapt._execute_mutex:
                answer = await _on_thread(conn, lambda: _run(conn._conn, operation, parameters))
        self._description, self._rowcount, self._lastrowid, rows = answer
        self._rows = collections.deque(rows)
        return None

    def executemany(self, operation: Any, seq_of_parameters: Sequence[Any]) -> Any:
        super().executemany(operation, seq_of_parameters)  # raises what the statement raised
        if _first_word(operation) in _WRITES:
            cast(_Connection, self._adapt_connection).wrote()
        return None

    async def _executemany_async(self, operation: Any, seq_of_parameters: Sequence[Any]) -> Any:
        adapt = cast(_Connection, self._adapt_connection)
        if _first_word(operation) in _INLINE and adapt.holds_write_lock():
            self._rowcount, self._lastrowid = _run_many(adapt.raw, operation, seq_of_parameters)
        else:
            conn: aiosqlite.Connection = self._connection  # type: ignore[assignment]
            async with adapt._execute_mutex:
                self._rowcount, self._lastrowid = await _on_thread(
                    conn, lambda: _run_many(conn._conn, operation, seq_of_parameters)
                )
        self._description = None
        self._rows = collections.deque()
        return None


class _Connection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ("_busy_ms", "_commit_on_loop", "_savepoint_began", "_syncs_commits", "_wrote")
    # The stock class's attribute is typed as exactly its own cursor class.
    _cursor_cls = _Cursor  # type: ignore[assignment]

    def __init__(self, dbapi: Any, connection: Any) -> None:
        super().__init__(dbapi, connection)
        self._wrote = False  # a write succeeded in the open transaction
        self._savepoint_began = False  # a SAVEPOINT began it: its RELEASE is the COMMIT
        self._busy_ms: int | None = None  # the connection's busy_timeout, read at first need
        # Whether a commit waits for the disk: SQLite's default (FULL, as Ballast opens every
        # connection) until a PRAGMA synchronous says otherwise.
        self._syncs_commits = True
        self._commit_on_loop = False  # commit_on_loop(): the open transaction's COMMIT inline

    @property
    def raw(self) -> sqlite3.Connection:
        raw: sqlite3.Connection = self._connection._conn
        return raw

    def in_transaction(self) -> bool:
        """SQLite's own answer (False once the connection is closed)."""
        try:
            return self.raw.in_transaction
        except ValueError:  # aiosqlite: no active connection
            return False

    def wrote(self) -> None:
        """A write succeeded: the transaction holds the write lock (if one is open)."""
        self._wrote = self.in_transaction()

    def began_with_savepoint(self) -> None:
        self._savepoint_began = True

    def holds_write_lock(self, *, release: bool = False) -> bool:
        """True while the open transaction holds the write lock and nothing of this
        connection is queued on its thread: a statement may run inline (a RELEASE only when
        it cannot be the COMMIT)."""
        if not self._wrote:
            return False
        if not self.in_transaction():  # ended without commit() or rollback() (SQLite's own)
            self._over()
            return False
        if release and self._savepoint_began:
            return False
        return not self._execute_mutex.locked()

    def idle(self) -> bool:
        """No transaction open and nothing of this connection queued on its thread."""
        return not self.in_transaction() and not self._execute_mutex.locked()

    def pragma_ran(self, operation: str) -> None:
        """A PRAGMA succeeded: note what it set that decides where a write runs."""
        syncs = _syncs_commits(operation)
        if syncs is not None:
            self._syncs_commits = syncs

    def may_try_first_write(self, parameters: Any) -> bool:
        """A write now would begin the transaction (nothing to lose if it is rolled back), or
        in autocommit would commit itself without waiting for the disk and is small."""
        try:
            if not self.idle():
                return False
            if self.raw.isolation_level is not None:
                return True
        except ValueError:  # aiosqlite: no active connection (the thread path raises it)
            return False
        count = 0 if parameters is None else len(parameters)
        return not self._syncs_commits and count <= INLINE_AUTOCOMMIT_PARAMETERS

    def first_write_unless_busy(
        self, operation: Any, parameters: Any
    ) -> tuple[Description, int, int | None, list[Any]] | None:
        """The write inline if the lock is free now; None (nothing done, no transaction
        open) if another connection holds it: then it waits on the thread."""
        raw = self.raw
        if self._busy_ms is None:
            self._busy_ms = int(raw.execute("PRAGMA busy_timeout").fetchone()[0])
        raw.execute("PRAGMA busy_timeout = 0")
        try:
            return _run(raw, operation, parameters)
        except sqlite3.OperationalError as err:
            if not _busy(err):
                raise
            # sqlite3 began the transaction for the attempt (SQLite itself let go of the read
            # lock the failed write took): end it, so that the write on the thread begins as
            # it would have without the attempt.
            if raw.in_transaction:
                raw.rollback()
            return None
        finally:
            raw.execute(f"PRAGMA busy_timeout = {self._busy_ms}")

    @property
    def isolation_level(self) -> str | None:
        level: str | None = self.raw.isolation_level
        return level

    @isolation_level.setter
    def isolation_level(self, value: str | None) -> None:
        """Inline while idle: then sqlite3's isolation level is a flag of the connection.
        Switching to autocommit with a transaction open commits it (the disk): a hop then."""
        try:
            raw = self.raw
            if self.idle():
                _set_isolation(raw, value)
            else:
                thread = cast(aiosqlite.Connection, self._connection)
                await_only(_on_thread(thread, lambda: _set_isolation(raw, value)))
        except Exception as error:
            self._handle_exception(error)

    def commit_on_loop(self) -> None:
        """The open transaction's COMMIT runs inline (see the module docstring), unless one
        was slow a moment ago."""
        self._commit_on_loop = self.in_transaction() and time.monotonic() >= _inline_commits_from

    def _over(self) -> None:
        self._wrote = self._savepoint_began = self._commit_on_loop = False

    def commit(self) -> None:
        inline = self._commit_on_loop and not self._execute_mutex.locked()
        self._over()
        if not self.in_transaction():  # sqlite3's commit() would do nothing: spare the hop
            return
        if inline:
            started = time.monotonic()
            try:
                self.raw.commit()
            except Exception as error:
                self._handle_exception(error)
            finally:
                _took(time.monotonic() - started)
            return
        super().commit()

    def rollback(self) -> None:
        # The pool rolls back every connection it gets back, most of them already committed:
        # with no transaction open sqlite3's rollback() does nothing, so spare the hop.
        self._over()
        if self.in_transaction():
            super().rollback()


def _took(seconds: float) -> None:
    """An inline COMMIT took ``seconds``: a slow one sends the next ones to the thread."""
    global _inline_commits_from
    if seconds > SLOW_INLINE_COMMIT_SECONDS:
        _inline_commits_from = time.monotonic() + THREAD_AFTER_SLOW_COMMIT_SECONDS
        log.warning(
            "a COMMIT on the event loop took %.0f ms (the disk is slow): commits go to their "
            "thread for the next %.0f s",
            seconds * 1000,
            THREAD_AFTER_SLOW_COMMIT_SECONDS,
        )


async def commit_on_loop(connection: AsyncConnection) -> None:
    """Have ``connection``'s open transaction commit on the event loop's thread (see the module
    docstring); nothing on another driver."""
    raw = await connection.get_raw_connection()
    driver = raw.dbapi_connection
    if isinstance(driver, _Connection):
        driver.commit_on_loop()


def _set_isolation(raw: sqlite3.Connection, value: str | None) -> None:
    raw.isolation_level = cast(Any, value)  # "" (deferred, sqlite3's default) is not typed


class _DBAPI(AsyncAdapt_aiosqlite_dbapi):
    def connect(self, *arg: Any, **kw: Any) -> AsyncAdapt_aiosqlite_connection:
        # Inline statements (see the module docstring) use it from the event loop's thread.
        kw["check_same_thread"] = False
        connection = aiosqlite.connect(*arg, **kw)
        # As SQLAlchemy's adapter does: the connection's thread never keeps the process alive.
        thread = connection if isinstance(connection, Thread) else connection._thread
        thread.daemon = True
        return _Connection(self, cast(Any, await_only(connection)))


def dbapi() -> AsyncAdapt_aiosqlite_dbapi | None:
    """The adapter to hand ``create_async_engine(module=...)``; None when the installed
    aiosqlite lacks what it uses (then the stock adapter serves)."""
    connection = aiosqlite.Connection
    if not (hasattr(connection, "_execute") and hasattr(connection, "_conn")):
        return None
    return _DBAPI(aiosqlite, sqlite3)
