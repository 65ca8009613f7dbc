"""PostgreSQL's pool pings a connection at checkout only when it sat idle: a connection used
a moment ago goes straight to work (no BEGIN, ``;``, ROLLBACK ahead of every transaction), an
idle one that died is replaced without the caller seeing it, and one that died while warm
fails one statement, as a transient error, and the pool heals."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_connection
from sqlalchemy.exc import DBAPIError

from bot.store import pool_liveness
from bot.store.database import Database
from bot.store.transient import is_unavailable
from tests.conftest import DatabaseUnderTest, _plain_postgres_url

pytestmark = pytest.mark.postgres


@pytest.fixture
def pings(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    count = [0]
    original = AsyncAdapt_asyncpg_connection.ping

    def counted(self: AsyncAdapt_asyncpg_connection) -> Any:
        count[0] += 1
        return original(self)

    monkeypatch.setattr(AsyncAdapt_asyncpg_connection, "ping", counted)
    return count


@pytest.fixture
async def db(postgres_database: DatabaseUnderTest) -> AsyncIterator[Database]:
    database = postgres_database.make()
    yield database
    await database.close()


async def backend_pid(db: Database) -> int:
    return (await backend(db))[0]


async def backend(db: Database) -> tuple[int, Any]:
    """The server process of the connection a transaction gets, and asyncpg's connection."""
    async with db.transaction() as session:
        pid = int((await session.execute(text("SELECT pg_backend_pid()"))).scalar_one())
        raw = await (await session.connection()).get_raw_connection()
        return pid, raw.driver_connection


async def terminate(pid: int) -> None:
    admin = await asyncpg.connect(_plain_postgres_url())
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()


@pytest.fixture
def age_every_connection(monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """Moves the pool's clock past the idle threshold, as if every connection had sat idle."""
    offset = [0.0]
    monkeypatch.setattr(pool_liveness, "_now", lambda: time.monotonic() + offset[0])

    def age() -> None:
        offset[0] += pool_liveness.IDLE_PING_SECONDS + 1

    return age


async def test_a_warm_connection_is_not_pinged_and_stays_the_one_in_use(
    db: Database, pings: list[int]
) -> None:
    first = await backend_pid(db)
    seen = {await backend_pid(db) for _ in range(20)}
    assert seen == {first}, "LIFO: the connection returned last is handed out again"
    assert pings[0] == 0


async def test_an_idle_connection_is_pinged_and_one_dead_silently_replaced_unseen(
    db: Database,
    pings: list[int],
    age_every_connection: Callable[[], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pid = await backend_pid(db)
    age_every_connection()
    assert await backend_pid(db) == pid
    assert pings[0] == 1, "idle past the threshold: pinged at checkout"

    # Fault injected: the close goes unseen (no goodbye on the socket); only the ping finds it.
    monkeypatch.setattr(pool_liveness, "_closed", lambda _connection: False)
    await terminate(pid)
    age_every_connection()
    replaced = await backend_pid(db)  # no error: the ping failed, the pool took another
    assert replaced != pid
    assert pings[0] == 2


async def test_a_warm_connection_the_server_closed_is_replaced_unseen(
    db: Database, pings: list[int]
) -> None:
    pid, driver = await backend(db)
    await terminate(pid)
    await eventually_closed(driver)
    assert await backend_pid(db) != pid, "no error: seen closed at checkout, replaced"
    assert pings[0] == 0, "no round trip for it"


async def test_a_warm_connection_that_died_silently_fails_once_as_unavailable_and_heals(
    db: Database, pings: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The trade-off the skip makes (fault injected: the close goes unseen, as when the
    network drops a connection without a goodbye)."""
    pid = await backend_pid(db)
    monkeypatch.setattr(pool_liveness, "_closed", lambda _connection: False)
    await terminate(pid)
    with pytest.raises(DBAPIError) as raised:
        await backend_pid(db)
    assert is_unavailable(raised.value), raised.value
    assert await backend_pid(db) != pid
    assert pings[0] == 0


async def eventually_closed(driver: Any) -> None:
    """Until asyncpg has seen the server's goodbye on that connection (in the pool)."""
    for _ in range(500):
        if driver.is_closed():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the terminated connection never looked closed")
