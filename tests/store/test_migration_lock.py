"""Replicas that start together migrate one at a time (PostgreSQL advisory lock)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.store.database import MIGRATION_LOCK_ID, Database, head_revision
from tests.conftest import fresh_database_url

pytestmark = pytest.mark.postgres


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
