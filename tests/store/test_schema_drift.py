"""The migrations build exactly the schema the SQLAlchemy models describe: every table.

Alembic's autogenerate comparison (tables, columns, types, nullability, indexes, unique
constraints, foreign keys) between the migrated database and ``Base.metadata``, on SQLite
and on PostgreSQL. A model changed without a migration, or a migration without the model,
shows up here as the operation autogenerate would write.
"""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from bot.store.tables import Base
from tests.conftest import DatabaseUnderTest


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "compare_server_default": True}
    )
    return list(compare_metadata(context, Base.metadata))


async def test_migrated_schema_matches_every_model(test_database: DatabaseUnderTest) -> None:
    db = test_database.make()
    try:
        await db.migrate()
        async with db.engine.connect() as conn:
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
            differences = await conn.run_sync(_differences)
    finally:
        await db.close()
    assert set(Base.metadata.tables) <= tables
    assert differences == []
