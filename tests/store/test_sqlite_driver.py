"""The one-hop SQLite adapter answers every statement as SQLAlchemy's stock aiosqlite adapter
does (rows, description, rowcount, lastrowid, errors), in one call on the connection's thread
instead of four."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import exc, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bot.store import sqlite_driver
from bot.store.database import Database
from tests.store.thread_hops import recording_thread_calls

SCHEMA = (
    "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT UNIQUE, n INTEGER)",
    "INSERT INTO t (name, n) VALUES ('a', 1), ('b', 2), ('c', 3)",
)
# (statement, parameters): each run through both adapters, in this order, in one transaction.
STATEMENTS: list[tuple[str, Any]] = [
    ("SELECT id, name, n FROM t ORDER BY id", None),
    ("SELECT name FROM t WHERE n > :n", {"n": 100}),
    ("INSERT INTO t (name, n) VALUES (:name, :n)", {"name": "d", "n": 4}),
    ("INSERT INTO t (name, n) VALUES (:name, :n) RETURNING id, name", {"name": "e", "n": 5}),
    ("UPDATE t SET n = n + 10 WHERE n < :n", {"n": 3}),
    ("UPDATE t SET n = n + 1 WHERE name = :name RETURNING n", {"name": "a"}),
    ("UPDATE t SET n = 0 WHERE name = :name", {"name": "nobody"}),
    ("DELETE FROM t WHERE name = :name", {"name": "b"}),
    ("SELECT count(*) AS rows, sum(n) AS total FROM t", None),
]


@pytest.fixture
async def engines(tmp_path: Path) -> AsyncIterator[tuple[AsyncEngine, AsyncEngine]]:
    stock = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'stock.db'}")
    module = sqlite_driver.dbapi()
    assert module is not None
    one_hop = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'one.db'}", module=module)
    for engine in (stock, one_hop):
        async with engine.begin() as conn:
            for statement in SCHEMA:
                await conn.execute(text(statement))
    yield stock, one_hop
    await stock.dispose()
    await one_hop.dispose()


async def answers(engine: AsyncEngine) -> list[Any]:
    seen = []
    async with engine.begin() as conn:
        for statement, params in STATEMENTS:
            result = await conn.execute(text(statement), params)
            raw = result.cursor  # type: ignore[attr-defined]
            description = None if raw is None else raw.description
            rows = [tuple(row) for row in result.all()] if result.returns_rows else None
            seen.append((statement, rows, description, result.rowcount, result.lastrowid))
        many = await conn.execute(
            text("INSERT INTO t (name, n) VALUES (:name, :n)"),
            [{"name": "x", "n": 7}, {"name": "y", "n": 8}],
        )
        seen.append(("executemany", many.rowcount))
    return seen


async def test_every_answer_equals_the_stock_adapters(
    engines: tuple[AsyncEngine, AsyncEngine],
) -> None:
    stock, one_hop = engines
    assert await answers(one_hop) == await answers(stock)


@pytest.mark.parametrize(
    ("statement", "error"),
    [
        ("SELEC nothing", exc.OperationalError),
        ("INSERT INTO t (name, n) VALUES ('a', 9)", exc.IntegrityError),
        ("SELECT * FROM no_such_table", exc.OperationalError),
    ],
)
async def test_errors_are_the_stock_adapters(
    engines: tuple[AsyncEngine, AsyncEngine], statement: str, error: type[Exception]
) -> None:
    messages = []
    for engine in engines:
        async with engine.connect() as conn:
            with pytest.raises(error) as raised:
                await conn.execute(text(statement))
            messages.append(str(raised.value.orig))
            # The connection is still good after the error.
            assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar() == 3
    assert messages[0] == messages[1]


async def test_a_statement_is_one_call_on_the_connections_thread(
    engines: tuple[AsyncEngine, AsyncEngine], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = recording_thread_calls(monkeypatch)
    per_statement = []
    for engine in engines:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))  # the connection is open and ready
            calls.clear()
            for _ in range(10):
                (await conn.execute(text("SELECT name FROM t WHERE n = 1"))).all()
            per_statement.append(len(calls) / 10)
    assert per_statement == [4, 1]


async def test_the_database_takes_it_and_falls_back_without_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'a.db'}")
    assert isinstance(db.engine.dialect.dbapi, sqlite_driver._DBAPI)
    await db.migrate()
    await db.close()

    monkeypatch.delattr(aiosqlite.Connection, "_execute")
    assert sqlite_driver.dbapi() is None
    stock = Database(f"sqlite+aiosqlite:///{tmp_path / 'b.db'}")
    assert not isinstance(stock.engine.dialect.dbapi, sqlite_driver._DBAPI)
    monkeypatch.undo()
    await stock.migrate()
    await stock.close()


async def test_after_the_first_write_statements_run_without_a_hop_until_commit(
    engines: tuple[AsyncEngine, AsyncEngine], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, one_hop = engines
    calls = recording_thread_calls(monkeypatch)
    async with one_hop.connect() as conn:
        await conn.execute(text("SELECT 1"))
        calls.clear()
        (await conn.execute(text("SELECT n FROM t WHERE name = 'a'"))).all()
        assert len(calls) == 1, "a read before any write may wait: it goes to the thread"
        # sqlite3 begins SQLite's transaction at the first write (the read was its own).
        await conn.execute(text("UPDATE t SET n = n + 1 WHERE name = 'a'"))
        assert len(calls) == 1, "the first write took the free lock inline, without waiting"
        await conn.execute(text("INSERT INTO t (name, n) VALUES ('z', 26)"))
        await conn.execute(text("UPDATE t SET n = 27 WHERE name = 'z' RETURNING n"))
        assert (await conn.execute(text("SELECT n FROM t WHERE name = 'z'"))).scalar() == 27
        await conn.execute(text("DELETE FROM t WHERE name = 'c'"))
        await conn.execute(
            text("INSERT INTO t (name, n) VALUES (:name, :n)"),
            [{"name": "m1", "n": 1}, {"name": "m2", "n": 2}],
        )
        await conn.execute(text("DELETE FROM t WHERE name IN ('m1', 'm2')"))
        assert len(calls) == 1, (
            "the lock is held: every statement since ran inline (executemany too)"
        )
        async with conn.begin_nested():
            await conn.execute(text("INSERT INTO t (name, n) VALUES ('r', 1)"))
        assert len(calls) == 1, "SAVEPOINT and RELEASE inside the transaction run inline"
        savepoint = await conn.begin_nested()
        await conn.execute(text("INSERT INTO t (name, n) VALUES ('s', 1)"))
        await savepoint.rollback()
        assert len(calls) == 2, "ROLLBACK TO goes to the thread"
        await conn.commit()
        assert len(calls) == 3, "COMMIT (the fsync) goes to the thread"
        (await conn.execute(text("SELECT count(*) FROM t"))).all()
        assert len(calls) == 4, "after the commit the lock is gone: reads hop again"
        rows = (await conn.execute(text("SELECT name, n FROM t ORDER BY name"))).all()
    assert [tuple(row) for row in rows] == [("a", 2), ("b", 2), ("r", 1), ("z", 27)]


async def test_the_release_that_commits_a_transaction_a_savepoint_began_goes_to_the_thread(
    engines: tuple[AsyncEngine, AsyncEngine], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _, one_hop = engines
    calls = recording_thread_calls(monkeypatch)
    async with one_hop.connect() as conn:
        await conn.execute(text("SELECT 1"))
        calls.clear()
        await conn.execute(text("SAVEPOINT outer_sp"))  # begins SQLite's transaction
        await conn.execute(text("INSERT INTO t (name, n) VALUES ('p', 1)"))
        await conn.execute(text("INSERT INTO t (name, n) VALUES ('q', 2)"))
        assert len(calls) == 2, "SAVEPOINT and the first write hop; the second write is inline"
        await conn.execute(text("RELEASE outer_sp"))  # SQLite commits here (an fsync)
        assert len(calls) == 3, "that RELEASE is the COMMIT: it goes to the thread"
        with contextlib.closing(sqlite3.connect(tmp_path / "one.db")) as other:
            seen = other.execute("SELECT count(*) FROM t WHERE name IN ('p', 'q')").fetchone()
        assert seen == (2,), "committed: another connection sees both rows"
        await conn.commit()


async def test_an_inline_error_is_the_stock_adapters_and_the_transaction_goes_on(
    engines: tuple[AsyncEngine, AsyncEngine], monkeypatch: pytest.MonkeyPatch
) -> None:
    messages, hops = [], []
    calls = recording_thread_calls(monkeypatch)
    for engine in engines:
        async with engine.connect() as conn:
            await conn.execute(text("INSERT INTO t (name, n) VALUES ('w', 1)"))
            calls.clear()
            with pytest.raises(exc.IntegrityError) as raised:
                await conn.execute(text("INSERT INTO t (name, n) VALUES ('a', 9)"))
            messages.append(str(raised.value.orig))
            await conn.execute(text("UPDATE t SET n = 2 WHERE name = 'w'"))
            await conn.commit()
            assert (await conn.execute(text("SELECT n FROM t WHERE name = 'w'"))).scalar() == 2
            hops.append(len(calls))
    assert messages[0] == messages[1]
    assert hops[1] == 2, "one-hop: the failed INSERT and the UPDATE inline; COMMIT, SELECT"


async def test_a_write_waiting_for_another_writers_lock_never_stops_the_event_loop(
    tmp_path: Path,
) -> None:
    """The first write of a transaction waits on the connection's thread, not inline, even
    when an earlier transaction on the same connection held the lock (fault injected: the
    lock is taken by another connection in between)."""
    path = tmp_path / "locked.db"
    module = sqlite_driver.dbapi()
    engine = create_async_engine(
        f"sqlite+aiosqlite:///{path}", module=module, connect_args={"timeout": 1.0}
    )
    async with engine.begin() as conn:
        await conn.execute(text(SCHEMA[0]))
    other = sqlite3.connect(path, isolation_level=None)
    try:
        async with engine.connect() as conn:
            await conn.execute(text("INSERT INTO t (name, n) VALUES ('x', 1)"))
            await conn.commit()  # this connection held the lock once, and gave it back
            other.execute("BEGIN IMMEDIATE")  # another writer takes it
            ticks = 0

            async def tick() -> None:
                nonlocal ticks
                while True:
                    await asyncio.sleep(0.01)
                    ticks += 1

            ticker = asyncio.create_task(tick())
            with pytest.raises(exc.OperationalError, match="locked"):
                await conn.execute(text("INSERT INTO t (name, n) VALUES ('y', 2)"))
            ticker.cancel()
            assert ticks >= 20, f"the loop ran {ticks} times in the 1 s wait"
            await conn.rollback()
    finally:
        other.execute("ROLLBACK")
        other.close()
        await engine.dispose()


async def test_a_first_write_waits_on_the_thread_while_another_writer_holds_the_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The inline try of a transaction's first write gives up at once when the lock is taken
    (``busy_timeout`` 0 for it, the connection's own restored after): the write then waits on
    the thread while the loop runs, and succeeds once the other writer commits, seeing its
    row."""
    path = tmp_path / "held.db"
    engine = create_async_engine(
        f"sqlite+aiosqlite:///{path}", module=sqlite_driver.dbapi(), connect_args={"timeout": 5}
    )
    async with engine.begin() as conn:
        await conn.execute(text(SCHEMA[0]))
    other = sqlite3.connect(path, isolation_level=None)
    calls = recording_thread_calls(monkeypatch)
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
            other.execute("BEGIN IMMEDIATE")
            other.execute("INSERT INTO t (name, n) VALUES ('theirs', 1)")
            calls.clear()

            async def commit_later() -> int:
                ticks = 0
                for _ in range(30):
                    await asyncio.sleep(0.01)
                    ticks += 1
                other.execute("COMMIT")
                return ticks

            committer = asyncio.create_task(commit_later())
            await conn.execute(
                text("INSERT INTO t (name, n) SELECT 'mine', n + 1 FROM t WHERE name = 'theirs'")
            )
            assert await committer == 30, "the loop ran while the write waited"
            assert calls == ["<lambda>"], "the write waited on the thread"
            rows = (await conn.execute(text("SELECT name, n FROM t ORDER BY name"))).all()
            assert [tuple(row) for row in rows] == [("mine", 2), ("theirs", 1)]
            await conn.commit()
            timeout = (await conn.execute(text("PRAGMA busy_timeout"))).scalar()
            assert timeout == 5000, "the connection's busy_timeout is back"
            calls.clear()
            await conn.execute(text("INSERT INTO t (name, n) VALUES ('again', 3)"))
            assert calls == [], "the lock free again: the next first write is inline"
            await conn.commit()
    finally:
        other.close()
        await engine.dispose()


async def test_an_inline_first_write_fails_as_the_stock_adapter_and_keeps_the_busy_timeout(
    engines: tuple[AsyncEngine, AsyncEngine], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An error other than a lock taken (no such table) is raised as it is, from the inline
    try, with no hop; the connection's ``busy_timeout`` is back after it."""
    messages = []
    calls = recording_thread_calls(monkeypatch)
    for engine in engines:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
            await conn.commit()
            calls.clear()
            with pytest.raises(exc.OperationalError) as raised:
                await conn.execute(text("INSERT INTO missing (n) VALUES (1)"))
            messages.append(str(raised.value.orig))
            if engine is engines[1]:
                assert calls == [], "tried inline, and failed there"
            await conn.rollback()
            assert (await conn.execute(text("PRAGMA busy_timeout"))).scalar() == 5000
    assert messages == ["no such table: missing"] * 2


async def test_the_pools_rollback_of_a_committed_connection_makes_no_hop(
    engines: tuple[AsyncEngine, AsyncEngine], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, one_hop = engines
    async with one_hop.connect() as conn:  # open the pool's connection
        await conn.execute(text("SELECT 1"))
    calls = recording_thread_calls(monkeypatch)
    async with one_hop.begin() as conn:
        await conn.execute(text("INSERT INTO t (name, n) VALUES ('k', 1)"))
    assert calls == ["commit"], "the INSERT inline (the lock was free), the COMMIT; then no hop"
    async with one_hop.connect() as conn:
        await conn.execute(text("INSERT INTO t (name, n) VALUES ('u', 1)"))
        # not committed: the pool's rollback on return is real and goes to the thread
    assert calls == ["commit", "rollback"]
    async with one_hop.connect() as conn:
        names = (await conn.execute(text("SELECT name FROM t WHERE name IN ('k', 'u')"))).all()
    assert [tuple(row) for row in names] == [("k",)]


async def test_an_autocommit_write_is_one_hop_and_the_connection_comes_back_transactional(
    engines: tuple[AsyncEngine, AsyncEngine], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The inbox writer's single INSERT: autocommit, so the statement commits itself in its one
    call on the thread. Switching the isolation level there and back (SQLAlchemy's reset when
    the pool takes the connection back, a PRAGMA included) makes no hop while no transaction is
    open, and leaves the pooled connection as it was: the next transaction rolls back."""
    _, one_hop = engines
    async with one_hop.connect() as conn:  # open the pool's connection
        await conn.execute(text("SELECT 1"))
    calls = recording_thread_calls(monkeypatch)
    async with one_hop.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("INSERT INTO t (name, n) VALUES ('auto', 1)"))
        await conn.commit()
    assert calls == ["<lambda>"], "the INSERT alone; no COMMIT, no isolation switch"
    with contextlib.closing(sqlite3.connect(tmp_path / "one.db")) as other:
        assert other.execute("SELECT n FROM t WHERE name = 'auto'").fetchall() == [(1,)]

    async with one_hop.connect() as conn:
        assert await conn.get_isolation_level() == "SERIALIZABLE"
        await conn.execute(text("INSERT INTO t (name, n) VALUES ('undone', 1)"))
        await conn.rollback()
        assert (await conn.execute(text("SELECT count(*) FROM t WHERE name = 'undone'"))).all() == [
            (0,)
        ]


async def test_an_autocommit_write_without_a_sync_at_commit_is_inline_when_small(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ``synchronous=NORMAL`` (the inbox writer's) an autocommit write's commit waits for
    no disk: a small one runs inline while the write lock is free; one with more parameters
    than the bound, one while another connection holds the lock (it waits on the thread, the
    loop running) and any once ``synchronous=FULL`` is back go to the thread. Committed all
    the same."""
    path = tmp_path / "auto.db"
    engine = create_async_engine(
        f"sqlite+aiosqlite:///{path}", module=sqlite_driver.dbapi(), connect_args={"timeout": 5}
    )
    async with engine.begin() as conn:
        await conn.execute(text("PRAGMA journal_mode=WAL"))
        await conn.execute(text(SCHEMA[0]))
    other = sqlite3.connect(path, isolation_level=None)
    calls = recording_thread_calls(monkeypatch)
    many = sqlite_driver.INLINE_AUTOCOMMIT_PARAMETERS + 1
    try:
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("PRAGMA synchronous=NORMAL"))
            calls.clear()
            await conn.execute(text("INSERT INTO t (name, n) VALUES ('small', 1)"))
            assert calls == [], "inline"
            values = ", ".join(f"(:n{i}, {i})" for i in range(many))
            await conn.execute(
                text(f"INSERT INTO t (name, n) VALUES {values}"),
                {f"n{i}": f"large-{i}" for i in range(many)},
            )
            assert calls == ["<lambda>"], "too many parameters: on the thread"

            other.execute("BEGIN IMMEDIATE")
            calls.clear()

            async def commit_later() -> int:
                ticks = 0
                for _ in range(20):
                    await asyncio.sleep(0.01)
                    ticks += 1
                other.execute("COMMIT")
                return ticks

            committer = asyncio.create_task(commit_later())
            await conn.execute(text("INSERT INTO t (name, n) VALUES ('waited', 1)"))
            assert await committer == 20, "the loop ran while the write waited"
            assert calls == ["<lambda>"], "the lock taken: it waited on the thread"
            timeout = (await conn.execute(text("PRAGMA busy_timeout"))).scalar()
            assert timeout == 5000, "the connection's busy_timeout is back"

            await conn.execute(text("PRAGMA synchronous = FULL"))
            calls.clear()
            await conn.execute(text("INSERT INTO t (name, n) VALUES ('synced', 1)"))
            assert calls == ["<lambda>"], "a commit that syncs: on the thread"
        names = {row[0] for row in other.execute("SELECT name FROM t")}
        assert {"small", "waited", "synced", "large-0"} <= names
        assert len(names) == 3 + many
    finally:
        other.close()
        await engine.dispose()


@pytest.mark.parametrize(
    ("statement", "syncs"),
    [
        ("PRAGMA synchronous=NORMAL", False),
        ("  pragma main.synchronous = 'off';", False),
        ("PRAGMA synchronous=1", False),
        ("PRAGMA synchronous=FULL", True),
        ("PRAGMA synchronous = extra", True),
        ("PRAGMA synchronous", None),
        ("PRAGMA read_uncommitted = 1", None),
        ("PRAGMA synchronous=OFF; PRAGMA synchronous=FULL", None),
    ],
)
def test_what_a_pragma_says_of_commits(statement: str, syncs: bool | None) -> None:
    assert sqlite_driver._syncs_commits(statement) is syncs


async def test_the_isolation_level_switches_on_the_thread_inside_a_transaction(
    engines: tuple[AsyncEngine, AsyncEngine], monkeypatch: pytest.MonkeyPatch
) -> None:
    """sqlite3 commits an open transaction when it is switched to autocommit: that may wait for
    the disk, so it goes to the thread."""
    _, one_hop = engines
    async with one_hop.connect() as conn:
        await conn.execute(text("INSERT INTO t (name, n) VALUES ('open', 1)"))
        raw = await conn.get_raw_connection()
        adapted = raw.dbapi_connection
        assert adapted is not None
        calls = recording_thread_calls(monkeypatch)
        await conn.run_sync(lambda _: setattr(adapted, "isolation_level", None))
        assert calls == ["<lambda>"]
        assert adapted.isolation_level is None
        assert not adapted.raw.in_transaction  # type: ignore[attr-defined]  # committed
        adapted.isolation_level = ""  # back to sqlite3's default, idle now: no hop
        assert calls == ["<lambda>"]


async def test_switching_the_isolation_level_of_a_closed_connection_is_an_error(
    engines: tuple[AsyncEngine, AsyncEngine],
) -> None:
    _, one_hop = engines
    async with one_hop.connect() as conn:
        raw = await conn.get_raw_connection()
        adapted = raw.dbapi_connection
        assert adapted is not None
        await conn.run_sync(lambda _: adapted.close())
        with pytest.raises(sqlite3.OperationalError, match="no active connection"):
            adapted.isolation_level = None

        def write(_: Any) -> None:
            adapted.cursor().execute("INSERT INTO t (name, n) VALUES ('late', 1)")

        # A first write is not tried inline on it: the thread path raises the adapter's error.
        with pytest.raises(sqlite3.OperationalError, match="Connection closed"):
            await conn.run_sync(write)
        await conn.invalidate()


async def test_a_transaction_marked_to_commit_on_the_loop_commits_without_a_hop(
    engines: tuple[AsyncEngine, AsyncEngine], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``commit_on_loop`` marks one transaction: its COMMIT runs inline and is durable (another
    connection reads it); the next transaction's COMMIT goes to the thread again, as does one
    marked before it began or rolled back since."""
    _, one_hop = engines
    monkeypatch.setattr(sqlite_driver, "_inline_commits_from", 0.0)  # no slow one before
    calls = recording_thread_calls(monkeypatch)
    async with one_hop.connect() as conn:
        await conn.execute(text("UPDATE t SET n = 10 WHERE name = 'a'"))
        await sqlite_driver.commit_on_loop(conn)
        calls.clear()
        await conn.commit()
        assert calls == [], "the marked COMMIT ran inline"
        async with one_hop.connect() as other:
            seen = (await other.execute(text("SELECT n FROM t WHERE name = 'a'"))).scalar()
        assert seen == 10, "committed"
        await conn.execute(text("UPDATE t SET n = 11 WHERE name = 'a'"))
        calls.clear()
        await conn.commit()
        assert calls == ["commit"], "the mark was for that transaction only"

        await sqlite_driver.commit_on_loop(conn)  # no transaction open: nothing to mark
        await conn.execute(text("UPDATE t SET n = 12 WHERE name = 'a'"))
        calls.clear()
        await conn.commit()
        assert calls == ["commit"], "marked before its transaction began: not this one"

        await conn.execute(text("UPDATE t SET n = 13 WHERE name = 'a'"))
        await sqlite_driver.commit_on_loop(conn)
        await conn.rollback()
        await conn.execute(text("UPDATE t SET n = 14 WHERE name = 'a'"))
        calls.clear()
        await conn.commit()
        assert calls == ["commit"], "a rollback ends the mark with its transaction"


async def test_after_a_slow_commit_on_the_loop_commits_go_to_the_thread_for_a_while(
    engines: tuple[AsyncEngine, AsyncEngine],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A disk that stalls must not stall the loop again and again: once an inline COMMIT took
    longer than the bound (here: any), marked ones go to the thread until the pause is over."""
    _, one_hop = engines
    monkeypatch.setattr(sqlite_driver, "_inline_commits_from", 0.0)
    monkeypatch.setattr(sqlite_driver, "SLOW_INLINE_COMMIT_SECONDS", -1.0)
    calls = recording_thread_calls(monkeypatch)
    async with one_hop.connect() as conn:
        await conn.execute(text("UPDATE t SET n = 10 WHERE name = 'a'"))
        await sqlite_driver.commit_on_loop(conn)
        await conn.commit()
        assert calls == [], "inline, and slow"
        assert "commits go to their thread" in caplog.text
        await conn.execute(text("UPDATE t SET n = 11 WHERE name = 'a'"))
        await sqlite_driver.commit_on_loop(conn)
        await conn.commit()
        assert calls == ["commit"], "marked, but after a slow one: the thread"
        monkeypatch.setattr(sqlite_driver, "_inline_commits_from", 0.0)  # the pause is over
        await conn.execute(text("UPDATE t SET n = 12 WHERE name = 'a'"))
        await sqlite_driver.commit_on_loop(conn)
        await conn.commit()
        assert calls == ["commit"], "inline again"


async def test_a_failed_commit_on_the_loop_is_the_adapters_error(
    engines: tuple[AsyncEngine, AsyncEngine],
) -> None:
    _, one_hop = engines
    async with one_hop.connect() as conn:
        await conn.exec_driver_sql("PRAGMA foreign_keys = OFF")
        await conn.exec_driver_sql(
            "CREATE TABLE child (id INTEGER PRIMARY KEY, "
            "t_id INTEGER REFERENCES t (id) DEFERRABLE INITIALLY DEFERRED)"
        )
        await conn.commit()
        await conn.exec_driver_sql("PRAGMA foreign_keys = ON")
        await conn.execute(text("INSERT INTO child (t_id) VALUES (999)"))
        await sqlite_driver.commit_on_loop(conn)
        with pytest.raises(exc.IntegrityError, match="FOREIGN KEY"):
            await conn.commit()
        async with one_hop.connect() as other:
            count = (await other.execute(text("SELECT count(*) FROM child"))).scalar()
        assert count == 0, "nothing committed"


async def test_commit_on_the_loop_is_nothing_on_another_driver(tmp_path: Path) -> None:
    stock = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'stock.db'}")
    try:
        async with stock.begin() as conn:
            await conn.execute(text("CREATE TABLE u (n INTEGER)"))
            await sqlite_driver.commit_on_loop(conn)
        async with stock.connect() as conn:
            assert (await conn.execute(text("SELECT count(*) FROM u"))).scalar() == 0
    finally:
        await stock.dispose()
