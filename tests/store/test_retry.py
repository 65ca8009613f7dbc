"""The one transaction-retry helper: redo on conflicts, give up after a number of attempts,
never retry anything else, and commit nothing of a failed attempt."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.store.database import Database
from bot.store.retry import TRANSIENT_RETRIES, in_transaction
from tests.conftest import DatabaseUnderTest


async def ready(test_database: DatabaseUnderTest) -> Database:
    db = test_database.make()
    async with db.transaction() as session:
        await session.execute(text("CREATE TABLE t (k INTEGER PRIMARY KEY, note TEXT)"))
        await session.execute(text("INSERT INTO t (k, note) VALUES (1, 'first')"))
    return db


async def keys(db: Database) -> list[int]:
    async with db.sessions() as session:
        return list((await session.scalars(text("SELECT k FROM t ORDER BY k"))).all())


async def test_a_conflict_is_redone_and_commits_once(test_database: DatabaseUnderTest) -> None:
    db = await ready(test_database)
    attempts = 0

    async def work(session: AsyncSession) -> int:
        nonlocal attempts
        attempts += 1
        # A row of its own first: a rolled-back attempt must leave it behind.
        await session.execute(text(f"INSERT INTO t (k) VALUES ({100 + attempts})"))
        key = 1 if attempts < 3 else 2  # key 1 exists: a real unique-key conflict
        await session.execute(text(f"INSERT INTO t (k) VALUES ({key})"))
        return attempts

    try:
        assert await in_transaction(db, work, what="test") == 3
        assert await keys(db) == [1, 2, 103]
    finally:
        await db.close()


async def test_gives_up_after_the_attempts(test_database: DatabaseUnderTest) -> None:
    db = await ready(test_database)
    attempts = 0

    async def work(session: AsyncSession) -> None:
        nonlocal attempts
        attempts += 1
        await session.execute(text("INSERT INTO t (k) VALUES (1)"))

    try:
        with pytest.raises(IntegrityError):
            await in_transaction(db, work)
        assert attempts == TRANSIENT_RETRIES
        attempts = 0
        with pytest.raises(IntegrityError):
            await in_transaction(db, work, attempts=1)
        assert attempts == 1
    finally:
        await db.close()


async def test_other_errors_are_not_retried(test_database: DatabaseUnderTest) -> None:
    db = await ready(test_database)
    attempts = 0

    async def bad_sql(session: AsyncSession) -> None:
        nonlocal attempts
        attempts += 1
        await session.execute(text("INSERT INTO t (k) VALUES (7)"))
        await session.execute(text("SELECT no_such_column FROM t"))

    async def bug(session: AsyncSession) -> None:
        nonlocal attempts
        attempts += 1
        raise ValueError("a bug, not the database")

    try:
        with pytest.raises(DBAPIError):
            await in_transaction(db, bad_sql)
        assert attempts == 1
        with pytest.raises(ValueError, match="a bug"):
            await in_transaction(db, bug)
        assert attempts == 2
        assert await keys(db) == [1]  # the failed transaction left nothing
    finally:
        await db.close()
