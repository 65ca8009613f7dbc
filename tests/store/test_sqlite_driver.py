"""The one-hop SQLite adapter answers every statement as SQLAlchemy's stock aiosqlite adapter
does (rows, description, rowcount, lastrowid, errors), in one call on the connection's thread
instead of four."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import exc, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bot.store import sqlite_driver
from bot.store.database import Database

SCHEMA = (
    "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT UNIQUE, n INTEGER)",
    "INSERT INTO t (name, n) VALUES ('a', 1), ('b', 2), ('c', 3)",
)
# (statement, parameters): each run through both adapters, in this order, in one transaction.
STATEMENTS: list[tuple[str, Any]] = [
    ("SELECT id, name, n FROM t ORDER BY id", None),
    ("SELECT name FROM t WHERE n > :n", {"n": 100}),
    ("INSERT INTO t (name, n) VALUES (:name, :n)", {"name": "d", "n": 4}),
    ("INSERT INTO t (name, n) VALUES (:name, :n) RETURNING id, name", {"name": "e", "n": 5}),
    ("UPDATE t SET n = n + 10 WHERE n < :n", {"n": 3}),
    ("UPDATE t SET n = n + 1 WHERE name = :name RETURNING n", {"name": "a"}),
    ("UPDATE t SET n = 0 WHERE name = :name", {"name": "nobody"}),
    ("DELETE FROM t WHERE name = :name", {"name": "b"}),
    ("SELECT count(*) AS rows, sum(n) AS total FROM t", None),
]


@pytest.fixture
async def engines(tmp_path: Path) -> AsyncIterator[tuple[AsyncEngine, AsyncEngine]]:
    stock = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'stock.db'}")
    module = sqlite_driver.dbapi()
    assert module is not None
    one_hop = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'one.db'}", module=module)
    for engine in (stock, one_hop):
        async with engine.begin() as conn:
            for statement in SCHEMA:
                await conn.execute(text(statement))
    yield stock, one_hop
    await stock.dispose()
    await one_hop.dispose()


async def answers(engine: AsyncEngine) -> list[Any]:
    seen = []
    async with engine.begin() as conn:
        for statement, params in STATEMENTS:
            result = await conn.execute(text(statement), params)
            raw = result.cursor  # type: ignore[attr-defined]
            description = None if raw is None else raw.description
            rows = [tuple(row) for row in result.all()] if result.returns_rows else None
            seen.append((statement, rows, description, result.rowcount, result.lastrowid))
        many = await conn.execute(
            text("INSERT INTO t (name, n) VALUES (:name, :n)"),
            [{"name": "x", "n": 7}, {"name": "y", "n": 8}],
        )
        seen.append(("executemany", many.rowcount))
    return seen


async def test_every_answer_equals_the_stock_adapters(
    engines: tuple[AsyncEngine, AsyncEngine],
) -> None:
    stock, one_hop = engines
    assert await answers(one_hop) == await answers(stock)


@pytest.mark.parametrize(
    ("statement", "error"),
    [
        ("SELEC nothing", exc.OperationalError),
        ("INSERT INTO t (name, n) VALUES ('a', 9)", exc.IntegrityError),
        ("SELECT * FROM no_such_table", exc.OperationalError),
    ],
)
async def test_errors_are_the_stock_adapters(
    engines: tuple[AsyncEngine, AsyncEngine], statement: str, error: type[Exception]
) -> None:
    messages = []
    for engine in engines:
        async with engine.connect() as conn:
            with pytest.raises(error) as raised:
                await conn.execute(text(statement))
            messages.append(str(raised.value.orig))
            # The connection is still good after the error.
            assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar() == 3
    assert messages[0] == messages[1]


async def test_a_statement_is_one_call_on_the_connections_thread(
    engines: tuple[AsyncEngine, AsyncEngine], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = 0
    original = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        return await original(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    per_statement = []
    for engine in engines:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))  # the connection is open and ready
            calls = 0
            for _ in range(10):
                (await conn.execute(text("SELECT name FROM t WHERE n = 1"))).all()
            per_statement.append(calls / 10)
    assert per_statement == [4, 1]


async def test_the_database_takes_it_and_falls_back_without_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'a.db'}")
    assert isinstance(db.engine.dialect.dbapi, sqlite_driver._DBAPI)
    await db.migrate()
    await db.close()

    monkeypatch.delattr(aiosqlite.Connection, "_execute")
    assert sqlite_driver.dbapi() is None
    stock = Database(f"sqlite+aiosqlite:///{tmp_path / 'b.db'}")
    assert not isinstance(stock.engine.dialect.dbapi, sqlite_driver._DBAPI)
    monkeypatch.undo()
    await stock.migrate()
    await stock.close()
