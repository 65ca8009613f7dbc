"""PostgreSQL's pooled connections on checkout (bot.store.pool_liveness): no ping for one used a
moment ago, a new connection for one the server closed, a ping for one that sat idle."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from bot.store import pool_liveness
from bot.store.database import Database
from bot.store.transient import is_unavailable
from tests.conftest import DatabaseUnderTest, _plain_postgres_url

pytestmark = pytest.mark.postgres


@pytest.fixture
async def db(postgres_database: DatabaseUnderTest) -> AsyncIterator[Database]:
    database: Database = postgres_database.make()
    yield database
    await database.close()


class Pings:
    """Counts the pings the dialect makes (each is three round trips on asyncpg)."""

    def __init__(self, db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        dialect = db.engine.sync_engine.dialect
        ping = dialect.do_ping

        def counted(dbapi_connection: Any) -> bool:
            self.count += 1
            return ping(dbapi_connection)

        monkeypatch.setattr(dialect, "do_ping", counted)


async def backend_pid(db: Database) -> int:
    """The server process of the connection the pool hands out next (the last one used)."""
    async with db.transaction() as session:
        return int(await session.scalar(text("SELECT pg_backend_pid()")))


async def terminate(pid: int) -> None:
    admin = await asyncpg.connect(_plain_postgres_url())
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()


async def test_a_connection_used_a_moment_ago_is_handed_out_without_a_ping(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    pings = Pings(db, monkeypatch)
    first = await backend_pid(db)  # a new connection: no ping either (SQLAlchemy's rule)
    for _ in range(5):
        assert await backend_pid(db) == first  # most recently used first
    assert pings.count == 0

    monkeypatch.setattr(pool_liveness, "PING_AFTER_IDLE_SECONDS", 0.05)
    await asyncio.sleep(0.1)
    assert await backend_pid(db) == first
    assert pings.count == 1  # idle past the window: pinged, alive, handed out


async def test_a_connection_the_server_closed_is_replaced_without_an_error(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``pg_terminate_backend`` (as a restart does to every connection): the server says so on
    the socket, asyncpg marks it closed, and the next checkout takes a new connection, well
    inside the no-ping window."""
    pings = Pings(db, monkeypatch)
    monkeypatch.setattr(pool_liveness, "PING_AFTER_IDLE_SECONDS", 3600.0)
    first = await backend_pid(db)
    await terminate(first)
    await asyncio.sleep(0.05)  # the event loop reads the server's last words
    second = await backend_pid(db)
    assert second != first
    assert pings.count == 0


async def test_an_idle_connection_that_died_unseen_is_found_by_the_ping(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connection dead without a word (a dropped route: asyncpg does not know) is pinged once
    idle past the window and replaced; within the window its transaction fails as a lost
    connection (unavailable: a webhook's 503, a worker's next try), the one cost of the
    window."""
    pings = Pings(db, monkeypatch)
    # Unseen: nothing on the socket, nothing asyncpg knows (here the server did say so).
    monkeypatch.setattr(pool_liveness, "closed_by_server", lambda connection: False)
    monkeypatch.setattr(pool_liveness, "has_unread", lambda connection: False)
    first = await backend_pid(db)
    await terminate(first)
    await asyncio.sleep(0.05)

    monkeypatch.setattr(pool_liveness, "PING_AFTER_IDLE_SECONDS", 3600.0)
    with pytest.raises(DBAPIError) as lost:
        await backend_pid(db)
    assert is_unavailable(lost.value), lost.value
    assert pings.count == 0

    first = await backend_pid(db)  # the pool replaced the connection that failed
    await terminate(first)
    await asyncio.sleep(0.05)
    monkeypatch.setattr(pool_liveness, "PING_AFTER_IDLE_SECONDS", 0.0)
    second = await backend_pid(db)
    assert second != first
    assert pings.count == 2  # the dead one's, then its replacement's (a window of 0: every one)


async def test_the_servers_last_words_not_read_yet_make_a_ping(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connection terminated while the event loop was busy (a replica's start-up steps one
    after another): its FATAL message and end of file wait in the socket, asyncpg does not know
    yet. The checkout sees them there and pings: a new connection, no error."""
    pings = Pings(db, monkeypatch)
    monkeypatch.setattr(pool_liveness, "PING_AFTER_IDLE_SECONDS", 3600.0)
    first = await backend_pid(db)

    def terminate_meanwhile() -> None:  # the event loop does not run while this waits
        thread = threading.Thread(target=asyncio.run, args=(terminate(first),))
        thread.start()
        thread.join()
        time.sleep(0.05)  # the server's last words reach the socket

    known: list[bool] = []
    closed = pool_liveness.closed_by_server

    def what_asyncpg_knows(connection: Any) -> bool:
        known.append(closed(connection))
        return known[-1]

    monkeypatch.setattr(pool_liveness, "closed_by_server", what_asyncpg_knows)
    terminate_meanwhile()
    second = await backend_pid(db)
    assert second != first
    assert known[0] is False  # at the checkout asyncpg did not know: the socket told
    assert pings.count == 1
