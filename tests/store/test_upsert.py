"""The one ON CONFLICT helper, on both databases."""

from __future__ import annotations

from sqlalchemy import Column, Integer, MetaData, String, Table, select, text

from bot.store.upsert import upsert
from tests.conftest import DatabaseUnderTest

metadata = MetaData()
notes = Table(
    "notes",
    metadata,
    Column("key", String, primary_key=True),
    Column("body", String, nullable=False),
    Column("version", Integer, nullable=False),
)


async def test_do_nothing_and_do_update(test_database: DatabaseUnderTest) -> None:
    db = test_database.make()
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
        async with db.transaction() as session:
            first = upsert(session, notes).values(key="a", body="one", version=1)
            stored = await session.execute(
                first.on_conflict_do_nothing(index_elements=["key"]).returning(notes.c.key)
            )
            assert stored.all() == [("a",)]
            again = upsert(session, notes).values(key="a", body="ignored", version=9)
            ignored = await session.execute(
                again.on_conflict_do_nothing(index_elements=["key"]).returning(notes.c.key)
            )
            assert ignored.all() == []  # the conflict inserted nothing
        async with db.transaction() as session:
            newer = upsert(db.dialect, notes).values(key="a", body="two", version=5)
            await session.execute(
                newer.on_conflict_do_update(
                    index_elements=[notes.c.key],
                    set_={"body": newer.excluded.body, "version": notes.c.version + 1},
                    where=notes.c.body != text("'frozen'"),
                )
            )
        async with db.sessions() as session:
            rows = (await session.execute(select(notes.c.key, notes.c.body, notes.c.version))).all()
        assert [tuple(row) for row in rows] == [("a", "two", 2)]
    finally:
        await db.close()
