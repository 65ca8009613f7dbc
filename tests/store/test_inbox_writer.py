"""The webhook writer: its driver SQL stores exactly what the ORM path stores; on SQLite a
group is one statement that commits itself, synced after the write lock is free."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, event, inspect, select
from sqlalchemy.exc import DBAPIError, OperationalError

from bot.intake.alert import Alert, AlertBatch, AlertSource, AlertStatus
from bot.store import database, inbox, inbox_writer, sqlite_driver
from bot.store.database import Database
from bot.store.inbox_writer import InboxWriter
from bot.store.tables import InboxAlert
from bot.store.transient import is_unavailable
from tests.conftest import Clock, DatabaseUnderTest
from tests.store.statements_sent import statements_sent
from tests.store.thread_hops import recording_thread_calls

T0 = datetime(2026, 11, 27, 2, 0, 0, 123456, tzinfo=UTC)
_REAL_FLUSH = inbox_writer._FLUSH


def batch() -> AlertBatch:
    labels = {"alertname": "ToolCallFailureRate", "service": "support", "ünïcode": '✓ "q" \\'}
    return AlertBatch(
        source=AlertSource.ALERTMANAGER,
        alerts=[
            Alert(
                fingerprint="f1",
                status=AlertStatus.FIRING,
                labels=labels,
                annotations={"summary": "line\nbreak", "emoji": "🔥"},
                starts_at=T0,
                source=AlertSource.ALERTMANAGER,
                generator_url="http://prometheus:9090/graph?g0.expr=up",
            ),
            Alert(
                fingerprint="f2",
                status=AlertStatus.RESOLVED,
                labels={**labels, "pod": "p-2"},
                starts_at=T0 - timedelta(minutes=5),
                ends_at=T0,
                source=AlertSource.ALERTMANAGER,
            ),
        ],
        group_key='{}:{alertname="ToolCallFailureRate"}',
        truncated_alerts=3,
    )


def stored(row: InboxAlert) -> dict[str, Any]:
    """Every column but the id (which differs between the two writes)."""
    return {c.key: getattr(row, c.key) for c in inspect(InboxAlert).column_attrs if c.key != "id"}


async def test_writer_stores_what_the_orm_stores(
    test_database: DatabaseUnderTest, clock: Clock
) -> None:
    now = clock()
    by_orm, by_writer = test_database.make(), test_database.make()
    # Both paths write the same table, one after the other: the ORM's rows are read and removed
    # before the writer stores the same batch.
    await by_orm.migrate()
    orm_batch = batch()
    async with by_orm.transaction() as session:
        result = await inbox.store_batch(session, orm_batch, now)
    assert (result.received, result.stored) == (2, 2)
    async with by_orm.sessions() as session:
        orm_rows = [stored(r) for r in await session.scalars(select(InboxAlert))]
        await session.execute(delete(InboxAlert))
        await session.commit()

    writer = InboxWriter(by_writer)
    receipt = await writer.store(batch(), now)
    assert (receipt.received, receipt.stored) == (2, 2)
    async with by_writer.sessions() as session:
        writer_rows = [stored(r) for r in await session.scalars(select(InboxAlert))]
    assert writer_rows == orm_rows
    assert writer_rows[0]["labels"]["ünïcode"] == '✓ "q" \\'
    assert writer_rows[1]["ends_at"] == T0
    assert writer_rows[0]["truncated_alerts"] == 3
    again = await writer.store(batch(), now)
    assert (again.received, again.stored) == (2, 0)  # the same states: duplicates
    for db in (by_orm, by_writer):
        await db.close()


async def test_on_sqlite_a_group_is_at_most_one_thread_hop_committed_when_answered(
    tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One INSERT in autocommit, whose commit waits for no disk (its sync comes after, below):
    a webhook's few alerts are written inline while the write lock is free, no call on the
    connection's thread; a large group is one call there, the statement and its commit.
    When the request is answered another process sees the rows, and the connection went back
    to the pool transactional and without the write gate."""
    path = tmp_path / "inbox.db"
    db = Database(f"sqlite+aiosqlite:///{path}")
    await db.migrate()
    writer = InboxWriter(db)
    try:
        await writer.store(batch(), clock())  # opens the pool's connection
        calls = recording_thread_calls(monkeypatch)
        again = batch()
        newer = [replace(alert, starts_at=T0 + timedelta(hours=1)) for alert in again.alerts]
        receipt = await writer.store(replace(again, alerts=newer), clock())
        assert (receipt.received, receipt.stored) == (2, 2)
        assert calls == [], calls
        many = [
            replace(alert, fingerprint=f"many-{n}", starts_at=T0 + timedelta(hours=2))
            for n in range(sqlite_driver.INLINE_AUTOCOMMIT_PARAMETERS // 4)
            for alert in again.alerts[:1]
        ]
        receipt = await writer.store(replace(again, alerts=many), clock())
        assert receipt.stored == len(many)
        assert calls == ["<lambda>"], calls
        with contextlib.closing(sqlite3.connect(path)) as other:
            counted = other.execute("SELECT count(*) FROM inbox_alerts").fetchone()
            assert counted == (4 + len(many),)

        assert db.gate.try_acquire(), "the write gate was handed back"
        db.gate.release()

        async def rolled_back() -> None:
            async with db.transaction() as session:
                await session.execute(delete(InboxAlert))
                raise RuntimeError("undo")

        with pytest.raises(RuntimeError):
            await rolled_back()
        async with db.sessions() as session:
            assert len((await session.scalars(select(InboxAlert))).all()) == 4 + len(many)
    finally:
        await db.close()  # ends the writer's task


async def test_with_the_stock_sqlite_adapter_a_group_is_an_ordinary_transaction(
    tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If aiosqlite lost what the one-hop adapter uses, the stock adapter serves: its isolation
    switches are hops each, so the group takes BEGIN and COMMIT, and stores the same."""
    monkeypatch.setattr(sqlite_driver, "dbapi", lambda: None)
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'stock.db'}")
    assert not db.one_hop_sqlite
    await db.migrate()
    switched: list[object] = []
    dialect = db.engine.dialect
    original = dialect.set_isolation_level

    def recorded(dbapi_connection: Any, level: Any) -> None:
        switched.append(level)
        original(dbapi_connection, level)

    monkeypatch.setattr(dialect, "set_isolation_level", recorded)
    try:
        receipt = await InboxWriter(db).store(batch(), clock())
        assert (receipt.received, receipt.stored) == (2, 2)
        assert switched == []  # BEGIN and COMMIT, not the autocommit switch and back
        async with db.sessions() as session:
            assert len((await session.scalars(select(InboxAlert))).all()) == 2
    finally:
        await db.close()


async def test_the_writer_tells_its_pacing_when_it_runs_out_of_webhooks(
    test_database: DatabaseUnderTest, clock: Clock
) -> None:
    """What lets the engine behind a storm start its next lane the moment no webhook waits
    (``IngestPacing.until_no_webhook_waits``): after a group, with none queued, the writer
    says so; the pacing then sees none queued or being written."""
    db = test_database.make()
    await db.migrate()
    writer = InboxWriter(db)
    try:
        told = asyncio.Event()
        written = writer.pacing.webhooks_written

        def tell() -> None:
            told.set()
            written()

        writer.pacing.webhooks_written = tell  # type: ignore[method-assign]
        await writer.store(batch(), clock())
        async with asyncio.timeout(5):
            await told.wait()
        assert not writer.pacing.webhooks_waiting
        async with asyncio.timeout(5):
            await writer.pacing.until_no_webhook_waits()
    finally:
        await db.close()


class _HeldSync:
    """``bot.store.database._sync_file`` held until released: what it was asked to sync, and
    whether it is running now."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, fails: OSError | None = None) -> None:
        self.paths: list[str] = []
        self.started = threading.Event()
        self.release = threading.Event()
        self.fails = fails
        self._sync = database._sync_file
        monkeypatch.setattr(database, "_sync_file", self._held)

    def _held(self, path: str) -> None:
        self.paths.append(path)
        self.started.set()
        assert self.release.wait(10)
        if self.fails is not None:
            raise self.fails
        self._sync(path)


def _synchronous(db: Database) -> Any:
    """The ``synchronous`` setting of the connection the pool hands out next (2: FULL)."""

    async def read() -> Any:
        async with db.engine.connect() as conn:
            return (await conn.exec_driver_sql("PRAGMA synchronous")).scalar()

    return read()


async def test_on_sqlite_the_commit_lets_go_of_the_lock_and_the_answer_waits_for_the_sync(
    tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The group commits without waiting for the disk: the write lock is free and the engine
    is woken while the WAL is synced; the request is answered only once that sync is done."""
    path = tmp_path / "inbox.db"
    db = Database(f"sqlite+aiosqlite:///{path}")
    await db.migrate()
    writer = InboxWriter(db)
    woken = asyncio.Event()
    writer.when_stored(woken.set)
    held = _HeldSync(monkeypatch)
    try:
        storing = asyncio.create_task(writer.store(batch(), clock()))
        await asyncio.sleep(0)  # queued: a webhook waits
        assert writer.pacing.webhooks_waiting
        engine_waits = asyncio.create_task(writer.pacing.until_no_webhook_waits())
        async with asyncio.timeout(10):
            await woken.wait()
            await asyncio.to_thread(held.started.wait, 10)
        assert held.paths == [f"{path}-wal"]
        await asyncio.sleep(0.05)
        assert not storing.done(), "answered before its rows were durable"
        # The lock is free meanwhile: another writer commits at once.
        with contextlib.closing(sqlite3.connect(path, timeout=0)) as other:
            other.execute("BEGIN IMMEDIATE")
            assert other.execute("SELECT count(*) FROM inbox_alerts").fetchone() == (2,)
            other.rollback()
        async with asyncio.timeout(5):
            await engine_waits  # the engine, paced behind webhooks, may start meanwhile
        held.release.set()
        async with asyncio.timeout(10):
            receipt = await storing
        assert (receipt.received, receipt.stored) == (2, 2)
        assert await _synchronous(db) == 2  # the pool's connection is FULL again
    finally:
        held.release.set()
        await db.close()


async def test_on_sqlite_a_failed_sync_fails_the_request_as_unavailable(
    tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An error of the sync (the disk) answers the request 503 (the sender retries; the rows,
    committed, are stored once); the next group syncs again before it is answered."""
    path = tmp_path / "inbox.db"
    db = Database(f"sqlite+aiosqlite:///{path}")
    await db.migrate()
    writer = InboxWriter(db)
    held = _HeldSync(monkeypatch, fails=OSError(5, "Input/output error"))
    held.release.set()
    try:
        with pytest.raises(OSError, match="Input/output") as failed:
            await writer.store(batch(), clock())
        assert is_unavailable(failed.value)
        assert await _synchronous(db) == 2
        held.fails = None
        receipt = await writer.store(batch(), clock())  # the sender's retry: duplicates
        assert (receipt.received, receipt.stored) == (2, 0)
        assert len(held.paths) == 2
    finally:
        await db.close()


async def test_on_postgresql_the_insert_commits_without_the_flush_and_the_answer_waits_for_it(
    postgres_database: DatabaseUnderTest, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The group's INSERT commits with synchronous_commit off, so the engine is woken before
    PostgreSQL's WAL flush; the request is answered only after a statement that commits at
    the server's configured level (which flushes the WAL up to it, the INSERT included)."""
    monkeypatch.setattr(inbox_writer, "POSTGRES_WRITERS", 1)  # one kept connection
    db = postgres_database.make()
    await db.migrate()
    held = _HeldSync(monkeypatch)
    writer = InboxWriter(db)
    storing: list[asyncio.Task[Any]] = []
    answered_at_flush: list[bool] = []
    with statements_sent(db.engine) as sent:
        writer.when_stored(lambda: sent.append("woken"))

        def answered_yet(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            if statement == inbox_writer._FLUSH:
                answered_at_flush.append(storing[-1].done())

        event.listen(db.engine.sync_engine, "before_cursor_execute", answered_yet)
        try:
            storing.append(asyncio.create_task(writer.store(batch(), clock())))
            receipt = await storing[-1]
            # The kept connection again: nothing to set up, nothing stored, still a flush.
            storing.append(asyncio.create_task(writer.store(batch(), clock())))
            again = await storing[-1]
        finally:
            event.remove(db.engine.sync_engine, "before_cursor_execute", answered_yet)
            await db.close()
    assert (receipt.received, receipt.stored) == (2, 2)
    assert (again.received, again.stored) == (2, 0)
    assert held.paths == []  # no SQLite sync
    assert answered_at_flush == [False, False, False]
    assert [line.split(" (")[0][:26] for line in sent] == [
        "SHOW synchronous_commit",  # the configured level, once
        "SELECT set_config('synchro",  # the flush tried once: the server takes it
        "SET synchronous_commit = o",
        "INSERT INTO inbox_alerts",
        "woken",
        "SELECT set_config('synchro",
        "INSERT INTO inbox_alerts",  # all duplicates, yet flushed: the commit of the
        "SELECT set_config('synchro",  # writer that stored them may not be durable yet
    ], sent


async def test_on_postgresql_a_refused_flush_statement_keeps_synchronous_commits(
    postgres_database: DatabaseUnderTest,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A server that refuses the flush's statement (its function revoked, say) must not turn
    every webhook into an error: the writer says so once and commits synchronously."""
    monkeypatch.setattr(inbox_writer, "POSTGRES_WRITERS", 1)
    monkeypatch.setattr(
        inbox_writer, "_FLUSH", "SELECT set_config('synchronous_commit', $1, true), no_such()"
    )
    db = postgres_database.make()
    await db.migrate()
    try:
        with statements_sent(db.engine) as sent:
            receipt = await InboxWriter(db).store(batch(), clock())
        async with db.engine.connect() as conn:
            stored = (await conn.execute(select(InboxAlert.fingerprint))).scalars().all()
    finally:
        await db.close()
    assert (receipt.received, receipt.stored) == (2, 2)
    assert sorted(stored) == ["f1", "f2"]
    assert [line[:26] for line in sent] == [
        "SHOW synchronous_commit",
        "SELECT set_config('synchro",
        "INSERT INTO inbox_alerts (",  # with the server's synchronous commit
    ]
    assert "refused the inbox's WAL flush statement" in caplog.text


async def test_on_postgresql_the_flush_commits_at_the_configured_level(
    postgres_database: DatabaseUnderTest, clock: Clock
) -> None:
    """``synchronous_commit`` as the server sets it for Ballast's connections (here ``local``,
    through the connection's settings, as a role's or database's setting would) is the level
    the flush commits with; configured ``off``, the writer neither sets it nor flushes."""
    settings = postgres_database.connect_args["server_settings"]
    sent: list[tuple[str, Any]] = []

    def seen(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        sent.append((statement, parameters))

    for level, flushes in (("local", ["local", "local"]), ("off", [])):
        db = Database(
            postgres_database.url,
            connect_args={"server_settings": {**settings, "synchronous_commit": level}},
        )
        await db.migrate()
        sent.clear()
        event.listen(db.engine.sync_engine, "before_cursor_execute", seen)
        try:
            async with db.engine.begin() as conn:
                await conn.execute(delete(InboxAlert))
            receipt = await InboxWriter(db).store(batch(), clock())
        finally:
            event.remove(db.engine.sync_engine, "before_cursor_execute", seen)
            await db.close()
        assert (receipt.received, receipt.stored) == (2, 2)
        # The probe's flush, then the group's.
        assert [p[0] for s, p in sent if s == inbox_writer._FLUSH] == flushes
        assert any(s.startswith("SET synchronous_commit") for s, _ in sent) == (level != "off")


async def test_on_postgresql_a_failed_flush_fails_the_request_and_the_next_group_flushes(
    postgres_database: DatabaseUnderTest, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The connection lost between the INSERT's commit and the flush: the request is answered
    503 (its rows may or may not be durable; the sender's retry stores them once), and the
    next group, on a fresh connection, flushes before it is answered."""
    monkeypatch.setattr(inbox_writer, "POSTGRES_WRITERS", 1)
    db = postgres_database.make()
    await db.migrate()
    writer = InboxWriter(db)
    first = await writer.store(batch(), clock())  # the connection set up, its flush probed
    assert (first.received, first.stored) == (2, 2)
    other = replace(
        batch(), alerts=[replace(a, fingerprint=a.fingerprint + "-b") for a in batch().alerts]
    )
    # The flush's own backend ends itself: the connection is gone as the flush is sent.
    monkeypatch.setattr(
        inbox_writer, "_FLUSH", "SELECT $1::text, pg_terminate_backend(pg_backend_pid())"
    )
    try:
        with pytest.raises(DBAPIError) as failed:
            await writer.store(other, clock())
        assert is_unavailable(failed.value), failed.value
        monkeypatch.setattr(inbox_writer, "_FLUSH", _REAL_FLUSH)
        with statements_sent(db.engine) as sent:
            receipt = await writer.store(other, clock())  # the sender's retry: duplicates
        assert (receipt.received, receipt.stored) == (2, 0)
        # A fresh connection (not probed again), the INSERT, and the flush before the answer.
        assert [line[:26] for line in sent] == [
            "SET synchronous_commit = o",
            "INSERT INTO inbox_alerts (",
            "SELECT set_config('synchro",
        ]
    finally:
        await db.close()


async def test_a_failing_listener_of_stored_alerts_is_logged_and_the_request_answered(
    test_database: DatabaseUnderTest, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    db = test_database.make()
    await db.migrate()
    writer = InboxWriter(db)
    told: list[str] = []

    def broken() -> None:
        raise RuntimeError("listener bug")

    writer.when_stored(broken)
    writer.when_stored(lambda: told.append("woken"))
    try:
        receipt = await writer.store(batch(), clock())
        assert (receipt.received, receipt.stored) == (2, 2)
        assert told == ["woken"]
        assert "a listener of stored alerts failed" in caplog.text
        duplicate = await writer.store(batch(), clock())  # nothing new: nobody is told
        assert (duplicate.received, duplicate.stored) == (2, 0)
        assert told == ["woken"]
    finally:
        await db.close()


async def test_on_sqlite_the_writers_connection_never_goes_back_to_the_pool(
    tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer keeps its connection (``synchronous=NORMAL``) and closes it with itself:
    whatever the pool hands out, before or after, commits with its fsync (FULL). A group
    whose INSERT fails hands the write gate on all the same, and the next group is stored."""
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'inbox.db'}")
    await db.migrate()
    writer = InboxWriter(db)
    run = sqlite_driver._run
    failures = ["INSERT"]

    def failing_once(raw: sqlite3.Connection, operation: Any, parameters: Any) -> Any:
        if operation.startswith(tuple(failures)):
            failures.clear()
            raise sqlite3.OperationalError("disk I/O error")
        return run(raw, operation, parameters)

    async def pooled_settings() -> list[Any]:
        """``synchronous`` of as many connections at once as the pool holds, and one more."""
        async with contextlib.AsyncExitStack() as stack:
            settings = []
            for _ in range(db.engine.pool.checkedin() + 1):  # type: ignore[attr-defined]
                conn = await stack.enter_async_context(db.engine.connect())
                settings.append((await conn.exec_driver_sql("PRAGMA synchronous")).scalar())
            return settings

    try:
        monkeypatch.setattr(sqlite_driver, "_run", failing_once)
        with pytest.raises(OperationalError, match="disk I/O error"):
            await writer.store(batch(), clock())
        assert failures == []
        assert db.gate.try_acquire(), "the write gate was handed back"
        db.gate.release()
        receipt = await writer.store(batch(), clock())
        assert (receipt.received, receipt.stored) == (2, 2)
        assert set(await pooled_settings()) == {2}

        connection = inbox_writer._Connection(db)
        async with connection.transaction(single_statement=True) as conn:
            assert (await conn.exec_driver_sql("PRAGMA synchronous")).scalar() == 1
        await connection.close()
        assert set(await pooled_settings()) == {2}
    finally:
        await db.close()


async def test_a_wal_that_is_gone_has_nothing_to_sync(tmp_path: Path) -> None:
    """When the last connection closes, SQLite copies the WAL into the database file (syncing
    it) and deletes the WAL: a sync that finds no WAL has nothing left to make durable."""
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'gone.db'}")
    await db.migrate()
    await db.engine.dispose()  # every connection closed: the WAL is checkpointed and deleted
    assert not (tmp_path / "gone.db-wal").exists()
    await db.sync_wal(str(tmp_path / "gone.db"))
    with pytest.raises(NotADirectoryError):  # any other error is raised
        await db.sync_wal(str(tmp_path / "gone.db" / "inside"))
    await db.close()
