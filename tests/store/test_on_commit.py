"""``on_commit``: callbacks run as the transaction's COMMIT returns, never for what rolled back."""

from __future__ import annotations

import contextlib
import logging
import sqlite3

import pytest
from sqlalchemy import event, text

from bot.store.database import Database, on_commit, sqlite_path


async def test_a_callback_runs_once_the_commit_returned_before_the_connection_goes_back(
    db: Database,
) -> None:
    """Before the pool takes the connection back: on PostgreSQL its reset is a round trip, in
    which other tasks would run (and be served what the commit changed, without the callback
    having run)."""
    seen: list[str] = []
    event.listen(db.engine.sync_engine.pool, "checkin", lambda *_: seen.append("checkin"))

    def callback() -> None:
        seen.append("callback")
        if db.is_sqlite:  # another connection already sees the row (no sync driver for PG)
            with contextlib.closing(sqlite3.connect(sqlite_path(db.url))) as conn:
                assert conn.execute("SELECT revision FROM control_revision").fetchone() == (-1,)

    async with db.transaction() as session:
        await session.execute(text("UPDATE control_revision SET revision = -1"))
        on_commit(session, callback)
        assert seen == []  # not before the commit
    assert seen == ["callback", "checkin"]


async def test_nothing_runs_when_the_transaction_rolls_back(db: Database) -> None:
    seen: list[str] = []

    async def abandoned() -> None:
        async with db.transaction() as session:
            on_commit(session, lambda: seen.append("ran"))
            raise RuntimeError("abandon")

    with pytest.raises(RuntimeError):
        await abandoned()
    assert seen == []


async def test_a_savepoint_rolled_back_drops_only_what_it_registered(db: Database) -> None:
    seen: list[str] = []
    async with db.transaction() as session:
        on_commit(session, lambda: seen.append("outer"))

        async def rolled_back() -> None:
            async with session.begin_nested():
                on_commit(session, lambda: seen.append("rolled back"))
                raise RuntimeError("to the savepoint")

        with pytest.raises(RuntimeError):
            await rolled_back()
        async with session.begin_nested():
            on_commit(session, lambda: seen.append("released"))
        assert seen == []  # a released savepoint is not the commit
    assert seen == ["outer", "released"]


async def test_a_failing_callback_is_logged_and_the_others_run(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[str] = []

    def fail() -> None:
        raise ValueError("broken callback")

    with caplog.at_level(logging.ERROR, logger="bot.store.database"):
        async with db.transaction() as session:
            on_commit(session, fail)
            on_commit(session, lambda: seen.append("after"))
    assert seen == ["after"]
    assert "a callback after a commit failed" in caplog.text


async def test_it_needs_a_transaction(db: Database) -> None:
    async with db.sessions() as session:
        with pytest.raises(RuntimeError, match="in a transaction"):
            on_commit(session, lambda: None)
