"""Replicas that start together migrate one at a time (PostgreSQL advisory lock), and a start
migrates again while PostgreSQL is away."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy.exc import DBAPIError, OperationalError

from bot.store.database import MIGRATION_LOCK_ID, Database, head_revision
from tests.conftest import fresh_database_url


@pytest.mark.postgres
def test_concurrent_migrations_wait_for_each_other(tmp_path: Path) -> None:
    with fresh_database_url("postgres", tmp_path, "ballast_lock") as url:
        asyncio.run(two_replicas_start(url))


async def two_replicas_start(url: str) -> None:
    import asyncpg

    holder = await asyncpg.connect(url)
    replicas = [Database("postgresql+asyncpg://" + url.split("://", 1)[1]) for _ in range(2)]
    try:
        # Someone else (a third replica, or `ballast db upgrade`) is migrating.
        await holder.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_ID)
        runs = [asyncio.create_task(db.migrate()) for db in replicas]

        async def waiting() -> int:
            return int(
                await holder.fetchval(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                    "AND objid = $1 AND NOT granted",
                    MIGRATION_LOCK_ID,
                )
            )

        for _ in range(400):
            if await waiting() == 2:
                break
            await asyncio.sleep(0.05)
        assert await waiting() == 2  # both replicas queue behind the lock ...
        assert not any(run.done() for run in runs)
        tables = await holder.fetchval(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        )
        assert tables == 0  # ... before touching the schema

        await holder.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_ID)
        results = await asyncio.gather(*runs)
        head = head_revision()
        # One did the work, the other found the schema at head: no duplicate DDL.
        assert sorted(results, key=str) == sorted([(None, head), (head, head)], key=str)
        assert [await db.current_revision() for db in replicas] == [head, head]
    finally:
        await holder.close()
        for db in replicas:
            await db.close()


@pytest.mark.postgres
def test_a_start_migrates_again_after_the_server_terminated_its_connection(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Seen under chaos in CI: a replica restarting while PostgreSQL dropped connections had
    its migration's connection terminated, and exited. At start the migration is made again."""
    with fresh_database_url("postgres", tmp_path, "ballast_lock") as url:
        with caplog.at_level(logging.WARNING, logger="bot.store.database"):
            result = asyncio.run(terminated_while_migrating(url, patience=20.0))
        assert result == (None, head_revision())
        assert any("trying again" in r.getMessage() for r in caplog.records)


@pytest.mark.postgres
def test_the_injected_termination_fails_a_migration_made_once(tmp_path: Path) -> None:
    """The fault above is real: with no patience the same start fails on it."""
    with (
        fresh_database_url("postgres", tmp_path, "ballast_lock") as url,
        pytest.raises(DBAPIError) as raised,
    ):
        asyncio.run(terminated_while_migrating(url, patience=0.0))
    assert "terminating connection due to administrator command" in str(raised.value)


async def test_sqlite_is_not_migrated_again(tmp_path: Path) -> None:
    """sqlite3 raises nearly everything as OperationalError, a migration's statement error
    too: retrying it would only delay the exit."""
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'ballast.db'}")
    attempts: list[int] = []

    async def failing() -> tuple[str | None, str | None]:
        attempts.append(1)
        raise OperationalError("ALTER TABLE", None, sqlite3.OperationalError("no such column"))

    db.migrate = failing  # type: ignore[method-assign]
    try:
        with pytest.raises(OperationalError):
            await db.migrate_at_start(patience=10.0)
    finally:
        await db.close()
    assert attempts == [1]


async def terminated_while_migrating(url: str, *, patience: float) -> tuple[str | None, str | None]:
    """A replica migrates at start; its connection is terminated while it waits for the
    migration lock (the moment is certain: the lock is held until then); then the lock is
    released."""
    import asyncpg

    holder = await asyncpg.connect(url)
    db = Database("postgresql+asyncpg://" + url.split("://", 1)[1])
    try:
        await holder.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_ID)
        start = asyncio.create_task(db.migrate_at_start(patience=patience))
        waiter = None
        for _ in range(400):
            waiter = await holder.fetchval(
                "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objid = $1 "
                "AND NOT granted",
                MIGRATION_LOCK_ID,
            )
            if waiter is not None:
                break
            await asyncio.sleep(0.05)
        assert waiter is not None, "the replica never waited for the migration lock"
        assert await holder.fetchval("SELECT pg_terminate_backend($1)", waiter)
        await holder.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_ID)
        return await start
    finally:
        await holder.close()
        await db.close()
