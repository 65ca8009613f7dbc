"""``DriverStatement``: rows written as driver SQL are stored exactly as SQLAlchemy's own
executemany of the same statement stores them, on both databases."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    event,
    insert,
    update,
)
from sqlalchemy.dialects.sqlite import aiosqlite
from sqlalchemy.exc import IntegrityError

from bot.store.database import Database
from bot.store.driver_sql import (
    DriverStatement,
    Rows,
    _together_sql,
    execute_together,
    insert_rows,
    update_rows,
)
from bot.store.incident_batch import _JsonText
from bot.store.tables import BigId, UtcDateTime

PROBE = Table(
    "driver_sql_probe",
    MetaData(),
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=True),
    Column("body", Text, nullable=True),
    Column("count", Integer, nullable=True),
    Column("big", BigInteger, nullable=True),
    Column("at", UtcDateTime(), nullable=True),
    Column("labels", JSON, nullable=True),
    Column("details", JSON, nullable=True),
)
NAMES = ("p_name", "p_body", "p_count", "p_big", "p_at", "p_labels", "p_details")
INSERT = insert(PROBE).values(
    name=bindparam("p_name"),
    body=bindparam("p_body"),
    count=bindparam("p_count"),
    big=bindparam("p_big"),
    at=bindparam("p_at", type_=UtcDateTime()),
    labels=bindparam("p_labels", type_=_JsonText()),
    details=bindparam("p_details", type_=JSON()),
)
UPDATE = (
    update(PROBE)
    .where(PROBE.c.id == bindparam("p_id"))
    .values(at=bindparam("p_at"), count=bindparam("p_count"), labels=bindparam("p_labels"))
)

ZONES = [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-11))]
TEXTS = ["", "plain", "ünïcödé ✓", "quote ' and \" and \\", "line\nbreak", "x" * 200, "null"]


def _rows(seed: int, count: int) -> list[tuple[Any, ...]]:
    rnd = random.Random(seed)

    def maybe(value: Any) -> Any:
        return None if rnd.random() < 0.15 else value

    rows = []
    for _ in range(count):
        at = datetime(1, 1, 2, tzinfo=UTC) + timedelta(
            seconds=rnd.randrange(0, 10**11), microseconds=rnd.choice([0, 1, 999_999, 123_456])
        )
        rows.append(
            (
                maybe(rnd.choice(TEXTS)),
                maybe(rnd.choice(TEXTS) * rnd.randrange(1, 4)),
                maybe(rnd.randrange(-(2**31), 2**31)),
                maybe(rnd.randrange(-(2**63), 2**63)),
                maybe(at.astimezone(rnd.choice(ZONES))),
                maybe({rnd.choice(TEXTS): rnd.choice(TEXTS) for _ in range(rnd.randrange(4))}),
                maybe(
                    {
                        "n": rnd.randrange(-(10**12), 10**12),
                        "f": rnd.random() * 1e6,
                        "none": None,
                        "list": [rnd.choice(TEXTS), 1, True],
                    }
                ),
            )
        )
    return rows


async def _stored(db: Database) -> list[tuple[Any, ...]]:
    """The rows as the driver reads them back, without SQLAlchemy's result conversions: for
    SQLite the very text stored."""
    async with db.engine.connect() as conn:
        result = await conn.exec_driver_sql(
            "SELECT name, body, count, big, at, labels, details FROM driver_sql_probe ORDER BY id"
        )
        return [tuple(row) for row in result.all()]


async def _fresh(db: Database) -> None:
    async with db.engine.begin() as conn:
        await conn.run_sync(PROBE.drop, checkfirst=True)
        await conn.run_sync(PROBE.create)


async def _sqlalchemy_writes(db: Database, rows: Sequence[tuple[Any, ...]]) -> None:
    async with db.engine.begin() as conn:
        await conn.execute(INSERT, [dict(zip(NAMES, row, strict=True)) for row in rows])


async def _driver_writes(db: Database, rows: Sequence[tuple[Any, ...]]) -> None:
    async with db.engine.begin() as conn:
        await DriverStatement(INSERT, NAMES).execute_many(conn, rows)


@pytest.mark.parametrize("count", [1, 300])
async def test_inserted_rows_are_stored_as_sqlalchemy_stores_them(db: Database, count: int) -> None:
    rows = _rows(seed=count, count=count)
    await _fresh_with(db, rows)
    expected = await _stored(db)
    await _fresh(db)
    await _driver_writes(db, rows)
    assert await _stored(db) == expected
    assert len(expected) == count


async def test_updated_rows_are_stored_as_sqlalchemy_stores_them(db: Database) -> None:
    rows = _rows(seed=7, count=50)
    changes = [
        (i + 1, row[4], row[2], row[5])
        for i, row in enumerate(reversed(_rows(seed=8, count=50)))
        if i % 3
    ]
    names = ("p_id", "p_at", "p_count", "p_labels")
    expected = await _stored_after_sqlalchemy_update(db, rows, UPDATE, names, changes)
    await _fresh_with(db, rows)
    async with db.engine.begin() as conn:
        # The caller's order of names need not be the statement's.
        statement = DriverStatement(UPDATE, ("p_labels", "p_count", "p_at", "p_id"))
        await statement.execute_many(conn, [(c[3], c[2], c[1], c[0]) for c in changes])
    assert await _stored(db) == expected
    assert expected != await _stored_after_inserts_only(db, rows)


async def _fresh_with(db: Database, rows: Sequence[tuple[Any, ...]]) -> None:
    """A fresh table holding ``rows``, written by SQLAlchemy's own executemany."""
    await _fresh(db)
    await _sqlalchemy_writes(db, rows)


async def _stored_after_sqlalchemy_update(
    db: Database,
    rows: Sequence[tuple[Any, ...]],
    statement: Any,
    names: Sequence[str],
    changes: Sequence[tuple[Any, ...]],
) -> list[tuple[Any, ...]]:
    """What ``rows`` become once SQLAlchemy's own executemany of ``statement`` applied
    ``changes`` (values in ``names`` order)."""
    await _fresh_with(db, rows)
    async with db.engine.begin() as conn:
        await conn.execute(statement, [dict(zip(names, c, strict=True)) for c in changes])
    return await _stored(db)


async def _stored_after_inserts_only(db: Database, rows: Sequence[tuple[Any, ...]]) -> Any:
    await _fresh_with(db, rows)
    return await _stored(db)


async def test_no_rows_execute_nothing(db: Database) -> None:
    await _fresh(db)
    async with db.engine.begin() as conn:
        await DriverStatement(INSERT, NAMES).execute_many(conn, [])
    assert await _stored(db) == []


async def test_a_naive_time_is_refused_and_nothing_is_written(db: Database) -> None:
    await _fresh(db)
    row = list(_rows(seed=3, count=1)[0])
    row[4] = datetime(2026, 12, 6, 12, 0)  # no zone
    with pytest.raises(ValueError, match="naive datetime"):
        async with db.engine.begin() as conn:
            await DriverStatement(INSERT, NAMES).execute_many(conn, [tuple(row)])
    assert await _stored(db) == []


def test_a_statement_parameter_without_a_value_is_an_error_naming_it() -> None:
    statement = DriverStatement(INSERT, NAMES[:-1])
    with pytest.raises(ValueError, match="p_details"):
        statement.plan(aiosqlite.dialect())


# The many-rows form (one statement on PostgreSQL, the compiled one on SQLite): the rows stored
# as SQLAlchemy's executemany of the same columns stores them, in the caller's order.
COLUMNS = ("name", "body", "count", "big", "at", "labels", "details")
TYPES = {"labels": _JsonText()}
INSERT_ROWS = insert_rows(PROBE, COLUMNS, TYPES)


@pytest.mark.parametrize("count", [1, 2, 300])
async def test_rows_inserted_as_one_statement_are_stored_in_order(db: Database, count: int) -> None:
    rows = _rows(seed=100 + count, count=count)
    await _fresh_with(db, rows)
    expected = await _stored(db)
    await _fresh(db)
    async with db.engine.begin() as conn:
        await INSERT_ROWS.execute_many(conn, iter(rows))  # any iterable
    assert await _stored(db) == expected  # ORDER BY id: the ids follow the rows' order
    assert len(expected) == count


async def test_rows_updated_as_one_statement_are_stored_as_sqlalchemy_stores_them(
    db: Database,
) -> None:
    rows = _rows(seed=9, count=60)
    changes = [
        (i + 1, row[4], row[2], row[5], row[0])
        for i, row in enumerate(reversed(_rows(seed=10, count=60)))
        if i % 4
    ]
    names = ("p_id", "p_at", "p_count", "p_labels", "p_name")
    statement = (
        update(PROBE)
        .where(PROBE.c.id == bindparam("p_id"))
        .values(
            at=bindparam("p_at"),
            count=bindparam("p_count"),
            labels=bindparam("p_labels", type_=_JsonText()),
            name=bindparam("p_name"),
        )
    )
    expected = await _stored_after_sqlalchemy_update(db, rows, statement, names, changes)
    await _fresh_with(db, rows)
    async with db.engine.begin() as conn:
        await update_rows(PROBE, "id", ("at", "count", "labels", "name"), TYPES).execute_many(
            conn, changes
        )
    assert await _stored(db) == expected
    assert expected != await _stored_after_inserts_only(db, rows)


def test_the_postgresql_form_is_one_statement_of_arrays_made_of_the_tables_names() -> None:
    from sqlalchemy.dialects.postgresql import asyncpg

    dialect = asyncpg.dialect()
    inserted = INSERT_ROWS.plan(dialect).arrays_sql
    assert inserted is not None
    assert inserted.startswith("INSERT INTO driver_sql_probe (name, body, count, big, at, ")
    assert "$5::TIMESTAMP WITH TIME ZONE[]" in inserted
    assert inserted.endswith("ORDER BY n__")
    updated = update_rows(PROBE, "id", ("count",)).plan(dialect).arrays_sql
    assert updated == (
        "UPDATE driver_sql_probe SET count = v.count FROM unnest($1::BIGINT[], $2::INTEGER[]) "
        "AS v(id, count) WHERE driver_sql_probe.id = v.id"
    )
    assert INSERT_ROWS.plan(aiosqlite.dialect()).arrays_sql is None  # SQLite: as compiled


async def test_a_failing_row_fails_the_whole_statement_and_nothing_is_written(
    db: Database,
) -> None:
    await _fresh(db)
    rows = _rows(seed=11, count=5)
    bad = list(rows[3])
    bad[4] = datetime(2026, 12, 7, 3, 0)  # no zone: refused before anything is sent
    with pytest.raises(ValueError, match="naive datetime"):
        async with db.engine.begin() as conn:
            await INSERT_ROWS.execute_many(conn, [*rows[:3], tuple(bad), rows[4]])
    assert await _stored(db) == []


def test_a_dialect_without_positional_parameters_is_refused_by_name() -> None:
    from sqlalchemy.dialects import sqlite

    statement = insert_rows(PROBE, COLUMNS, TYPES)  # its own: plans are kept per dialect name
    with pytest.raises(ValueError, match="sqlite's paramstyle is not positional"):
        statement.plan(sqlite.dialect(paramstyle="named"))


# Several statements together (one round trip on PostgreSQL, in turn on SQLite): what each
# stores is what it stores executed alone, and they stand or fall together.
NAMED = Table(
    "driver_sql_named",
    MetaData(),
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("count", Integer, nullable=True),
)
INSERT_NAMED = insert_rows(NAMED, ("name", "count"), skip_conflicts_on=("name",))
INSERT_NAMED_STRICT = insert_rows(NAMED, ("name", "count"))
UPDATE_COUNTS = update_rows(PROBE, "id", ("count",))


async def _fresh_named(db: Database) -> None:
    async with db.engine.begin() as conn:
        await conn.run_sync(NAMED.drop, checkfirst=True)
        await conn.run_sync(NAMED.create)
        await conn.exec_driver_sql("INSERT INTO driver_sql_named (name, count) VALUES ('old', 0)")


async def _named(db: Database) -> list[tuple[Any, ...]]:
    async with db.engine.connect() as conn:
        result = await conn.exec_driver_sql(
            "SELECT id, name, count FROM driver_sql_named ORDER BY id"
        )
        return [tuple(row) for row in result.all()]


@contextlib.contextmanager
def _statements_sent(db: Database) -> Iterator[list[str]]:
    """Every statement sent to the database meanwhile (its SQL)."""
    sent: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        sent.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", record)


def _parts() -> list[Rows]:
    return [
        Rows(INSERT_ROWS, _rows(seed=21, count=3)),
        Rows(UPDATE_COUNTS, []),  # nothing to do: left out
        # A name already stored, and one repeated in the rows: skipped, the first kept.
        Rows(INSERT_NAMED, [("new", 1), ("old", 2), ("newer", 3), ("new", 4)]),
        Rows(UPDATE_COUNTS, [(2, 20), (1, 10)]),
    ]


async def test_statements_together_store_what_each_stores_in_turn(db: Database) -> None:
    base = _rows(seed=20, count=2)
    await _fresh_with(db, base)
    await _fresh_named(db)
    async with db.engine.begin() as conn:
        for part in _parts():
            await part.statement.execute_many(conn, part.rows)
    expected = (await _stored(db), await _named(db))
    assert [row[1:] for row in expected[1]] == [("old", 0), ("new", 1), ("newer", 3)]

    await _fresh_with(db, base)
    await _fresh_named(db)
    with _statements_sent(db) as sent:
        async with db.engine.begin() as conn:
            await execute_together(conn, _parts())
    assert (await _stored(db), await _named(db)) == expected
    if db.dialect == "postgresql":
        assert len(sent) == 1, sent  # one round trip
        assert sent[0].startswith("WITH w0__ AS (INSERT INTO driver_sql_probe ")
        assert "$8::VARCHAR(200)[]" in sent[0]  # numbered on from the first statement's 7
    else:
        assert len(sent) == 3, sent


async def test_statements_together_stand_or_fall_together(db: Database) -> None:
    await _fresh(db)
    await _fresh_named(db)
    parts = [
        Rows(INSERT_ROWS, _rows(seed=22, count=2)),
        Rows(INSERT_NAMED_STRICT, [("fine", 1), ("old", 2)]),  # 'old' is taken: refused
    ]
    with pytest.raises(IntegrityError):
        async with db.engine.begin() as conn:
            await execute_together(conn, parts)
    assert await _stored(db) == []
    assert [row[1:] for row in await _named(db)] == [("old", 0)]


async def test_one_statement_with_rows_goes_alone(db: Database) -> None:
    await _fresh(db)
    with _statements_sent(db) as sent:
        async with db.engine.begin() as conn:
            await execute_together(conn, [Rows(UPDATE_COUNTS, []), Rows(INSERT_ROWS, _rows(23, 1))])
            await execute_together(conn, [])
    assert len(sent) == 1
    assert not sent[0].startswith("WITH")
    assert len(await _stored(db)) == 1


def test_only_many_rows_statements_go_together() -> None:
    from sqlalchemy.dialects.postgresql import asyncpg

    plain = DriverStatement(INSERT, NAMES)
    with pytest.raises(ValueError, match="insert_rows or update_rows"):
        _together_sql(
            [plain.plan(asyncpg.dialect()), INSERT_ROWS.plan(asyncpg.dialect())], asyncpg.dialect()
        )
