"""Migration 0004 creates exactly the tables the models describe, and goes back down."""

from __future__ import annotations

from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from bot.store.database import Database, alembic_config
from bot.store.tables import Base

MINE = {"slack_outbox", "slack_messages"}


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    found = []
    for diff in compare_metadata(context, Base.metadata):
        text = repr(diff)
        if any(name in text for name in MINE):
            found.append(diff)
    return found


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names()) & MINE


async def test_upgrade_matches_the_models_and_downgrade_removes_the_tables(db: Database) -> None:
    await db.migrate()
    async with db.engine.begin() as conn:
        assert await conn.run_sync(_tables) == MINE
        assert await conn.run_sync(_differences) == []
        indexes = await conn.run_sync(
            lambda c: {i["name"]: i for i in inspect(c).get_indexes("slack_outbox")}
        )
        assert indexes["uq_slack_outbox_pending_coalesce_key"]["unique"]
        await conn.run_sync(lambda c: command.downgrade(alembic_config(c), "0003"))
        assert await conn.run_sync(_tables) == set()
        await conn.run_sync(lambda c: command.upgrade(alembic_config(c), "0004"))
        assert await conn.run_sync(_tables) == MINE
