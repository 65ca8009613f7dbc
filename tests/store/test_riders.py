"""A rider (``bot.store.riders``) is written exactly once: with the statement that carries it,
or on its own when it is settled and nothing carried it; all or none with its transaction.

PostgreSQL only: SQLite has no data-modifying ``WITH``, and nothing rides there.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, bindparam, insert, select
from sqlalchemy import text as sql_text
from sqlalchemy.exc import IntegrityError

from bot.store.riders import Rider, RiderShape
from tests.conftest import DatabaseUnderTest
from tests.store.statements_sent import statements_sent

pytestmark = pytest.mark.parametrize("database_kind", ["postgres"])

_META = MetaData()
_NOTES = Table(
    "rider_notes",
    _META,
    Column("id", Integer, primary_key=True),
    Column("body", String(50), nullable=False, unique=True),
)
_TAGS = Table(
    "rider_tags",
    _META,
    Column("id", Integer, primary_key=True),
    Column("tag", String(50), nullable=False),
)


def _shape() -> RiderShape:
    tag = insert(_TAGS).values(tag=bindparam("ride_tag")).cte("tag")
    note = insert(_NOTES).values(body=bindparam("ride_body")).returning(_NOTES.c.id)
    carried = note.cte("note")
    return RiderShape(note.add_cte(tag), (tag, carried), carried)


SHAPE = _shape()
# A statement that carries riders: here one that reads nothing the rider writes.
CARRIER = select(sql_text("41 + 1 AS answer"))


async def _database(test_database: DatabaseUnderTest) -> Any:
    db = test_database.make()
    async with db.engine.begin() as conn:
        await conn.run_sync(_META.create_all)
    return db


async def _rows(db: Any) -> tuple[list[str], list[str]]:
    async with db.sessions() as session:
        notes = list(await session.scalars(select(_NOTES.c.body).order_by(_NOTES.c.id)))
        tags = list(await session.scalars(select(_TAGS.c.tag).order_by(_TAGS.c.id)))
    return notes, tags


async def test_a_carried_rider_is_written_with_its_carrier_and_not_again(
    test_database: DatabaseUnderTest,
) -> None:
    db = await _database(test_database)
    heard: list[Any] = []
    rider = Rider(SHAPE, {"ride_body": "first", "ride_tag": "a"}, heard.append)
    with statements_sent(db.engine) as seen:
        async with db.sessions() as session, session.begin():
            statement = SHAPE.carried_by(CARRIER)
            row = (await session.execute(statement, rider.params)).one()
            rider.took(row)
            assert row.answer == 42
            assert await rider.settle(session) == heard[0]
    assert len(heard) == 1
    assert isinstance(heard[0], int)
    # One statement for the carrier and the rider, nothing sent by settle.
    assert len([s for s in seen if "rider_notes" in s]) == 1, seen
    assert await _rows(db) == (["first"], ["a"])
    await db.close()


async def test_a_rider_nothing_carried_is_sent_alone_when_settled(
    test_database: DatabaseUnderTest,
) -> None:
    db = await _database(test_database)
    heard: list[Any] = []
    rider = Rider(SHAPE, {"ride_body": "alone", "ride_tag": "b"}, heard.append)
    async with db.sessions() as session, session.begin():
        value = await rider.settle(session)
        assert await rider.settle(session) == value  # settled once: not sent twice
    assert heard == [value]
    assert await _rows(db) == (["alone"], ["b"])
    await db.close()


async def test_a_carrier_that_fails_writes_nothing_of_its_rider(
    test_database: DatabaseUnderTest,
) -> None:
    """The fault: the rider's own row breaks a UNIQUE constraint inside the carrier. The
    statement, the rider and what its transaction wrote before are all rolled back."""
    db = await _database(test_database)
    async with db.sessions() as session, session.begin():
        await session.execute(insert(_NOTES).values(body="taken"))
    heard: list[Any] = []
    rider = Rider(SHAPE, {"ride_body": "taken", "ride_tag": "c"}, heard.append)
    async with db.sessions() as session:
        transaction = await session.begin()
        await session.execute(insert(_TAGS).values(tag="before"))
        with pytest.raises(IntegrityError, match="rider_notes_body_key"):
            await session.execute(SHAPE.carried_by(CARRIER), rider.params)
        await transaction.rollback()
    assert heard == []
    assert not rider.settled
    assert await _rows(db) == (["taken"], [])
    await db.close()


async def test_the_carrying_statement_is_built_once_per_carrier(
    test_database: DatabaseUnderTest,
) -> None:
    other = select(sql_text("1 AS one"))
    first = SHAPE.carried_by(CARRIER)
    assert SHAPE.carried_by(CARRIER) is first
    assert SHAPE.carried_by(other) is not first
    assert SHAPE.carried_by(other) is SHAPE.carried_by(other)
