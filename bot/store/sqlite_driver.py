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
"""

from __future__ import annotations

import collections
import sqlite3
from collections.abc import Callable, Sequence
from threading import Thread
from typing import Any, TypeVar, cast

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util import await_only

Description = tuple[tuple[Any, ...], ...] | None
T = TypeVar("T")


async def _on_thread(conn: aiosqlite.Connection, call: Callable[[], T]) -> T:
    """``call()`` on the connection's own thread (aiosqlite's queue), awaited."""
    answer: T = await conn._execute(call)  # type: ignore[no-untyped-call]
    return answer


class _Cursor(AsyncAdapt_aiosqlite_cursor):
    """A client-side cursor whose statement is one call on the connection's thread. Its rows
    are fetched with it, so nothing stays open on that thread between calls."""

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

    async def _execute_async(self, operation: Any, parameters: Any) -> Any:
        conn: aiosqlite.Connection = self._connection  # type: ignore[assignment]

        def run() -> tuple[Description, int, int | None, list[Any]]:
            cursor = conn._conn.cursor()
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

        async with self._adapt_connection._execute_mutex:
            answer = await _on_thread(conn, run)
        self._description, self._rowcount, self._lastrowid, rows = answer
        self._rows = collections.deque(rows)
        return None

    async def _executemany_async(self, operation: Any, seq_of_parameters: Sequence[Any]) -> Any:
        conn: aiosqlite.Connection = self._connection  # type: ignore[assignment]

        def run() -> tuple[int, int | None]:
            cursor = conn._conn.cursor()
            try:
                cursor.executemany(operation, seq_of_parameters)
                return cursor.rowcount, cursor.lastrowid
            finally:
                cursor.close()

        async with self._adapt_connection._execute_mutex:
            self._rowcount, self._lastrowid = await _on_thread(conn, run)
        self._description = None
        self._rows = collections.deque()
        return None


class _Connection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()
    # The stock class's attribute is typed as exactly its own cursor class.
    _cursor_cls = _Cursor  # type: ignore[assignment]


class _DBAPI(AsyncAdapt_aiosqlite_dbapi):
    def connect(self, *arg: Any, **kw: Any) -> AsyncAdapt_aiosqlite_connection:
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
