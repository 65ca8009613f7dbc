"""The one classifier of passing database trouble, on errors the real drivers raise."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import create_async_engine

from bot.store.transient import (
    Transience,
    classify,
    is_transient,
    is_unavailable,
    should_redo,
)
from tests.conftest import DatabaseUnderTest


async def failure(test_database: DatabaseUnderTest, sql: str) -> BaseException:
    """The error SQLAlchemy raises for ``sql`` after a table ``t`` with one row key 1."""
    db = test_database.make()
    try:
        async with db.transaction() as session:
            await session.execute(text("CREATE TABLE t (k INTEGER PRIMARY KEY)"))
            await session.execute(text("INSERT INTO t (k) VALUES (1)"))
        with pytest.raises(DBAPIError) as caught:
            async with db.transaction() as session:
                await session.execute(text(sql))
        return caught.value
    finally:
        await db.close()


async def test_a_lost_insert_race_is_a_conflict(test_database: DatabaseUnderTest) -> None:
    err = await failure(test_database, "INSERT INTO t (k) VALUES (1)")
    assert classify(err) is Transience.CONFLICT
    assert should_redo(err)
    assert is_transient(err)
    assert not is_unavailable(err)


async def test_a_bad_statement_is_not_transient(test_database: DatabaseUnderTest) -> None:
    # sqlite3 reports most statement errors ("no such column"...) as OperationalError, which
    # counts as unavailable (as the inbox and the control store always counted it); two
    # statements in one call is one of the few it reports as ProgrammingError.
    sqlite = test_database.url.startswith("sqlite")
    bad = "SELECT 1; SELECT 2" if sqlite else "SELECT no_such_column FROM t"
    err = await failure(test_database, bad)
    assert classify(err) is None
    assert not should_redo(err)
    assert not is_transient(err)
    assert not is_unavailable(err)


@pytest.mark.postgres
@pytest.mark.parametrize("sqlstate", ["40P01", "40001"])
async def test_deadlock_and_serialization_failure_are_conflicts(
    postgres_database: DatabaseUnderTest, sqlstate: str
) -> None:
    # asyncpg's DeadlockDetectedError / SerializationError, raised by the server itself.
    raise_it = f"DO $$ BEGIN RAISE EXCEPTION 'x' USING ERRCODE = '{sqlstate}'; END $$"
    err = await failure(postgres_database, raise_it)
    assert classify(err) is Transience.CONFLICT
    assert should_redo(err)
    assert not is_unavailable(err)


def test_sqlite_database_is_locked(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (k INTEGER)")
    holder.execute("BEGIN IMMEDIATE")  # takes the write lock and keeps it
    engine = create_engine(f"sqlite:///{path}", connect_args={"timeout": 0.05})
    try:
        with pytest.raises(DBAPIError) as caught, engine.begin() as conn:
            conn.execute(text("INSERT INTO t (k) VALUES (1)"))
    finally:
        engine.dispose()
        holder.close()
    assert classify(caught.value) is Transience.LOCKED
    assert should_redo(caught.value)
    assert is_unavailable(caught.value)


async def test_an_exhausted_pool_is_unavailable(test_database: DatabaseUnderTest) -> None:
    url = test_database.url
    engine = create_async_engine(
        url,
        pool_size=1,
        max_overflow=0,
        pool_timeout=0.05,
        connect_args=test_database.connect_args,
    )
    try:
        async with engine.connect() as held:
            await held.execute(text("SELECT 1"))
            with pytest.raises(PoolTimeout) as caught:
                await engine.connect()
    finally:
        await engine.dispose()
    assert classify(caught.value) is Transience.UNAVAILABLE
    assert is_unavailable(caught.value)
    assert is_transient(caught.value)
    assert not should_redo(caught.value)


@pytest.mark.postgres
async def test_a_server_that_is_not_there_is_unavailable() -> None:
    engine = create_async_engine("postgresql+asyncpg://postgres@127.0.0.1:1/none")
    try:
        with pytest.raises(Exception) as caught:  # noqa: PT011 - the driver decides the type
            async with engine.connect():
                pass
    finally:
        await engine.dispose()
    assert classify(caught.value) is Transience.UNAVAILABLE
    assert is_unavailable(caught.value)
    assert not should_redo(caught.value)


def test_errors_of_other_kinds_are_not_transient() -> None:
    assert classify(ValueError("no")) is None
    assert classify(TimeoutError()) is Transience.UNAVAILABLE
