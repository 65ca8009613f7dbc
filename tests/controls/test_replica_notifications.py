"""Two Ballast apps on one PostgreSQL database: a control written through one is served by the
other's OFREP because PostgreSQL notified it, not because it polled.

Each test sets the serving replica's polling periods far beyond its hang guard, so it can only
pass by the path it names (the notification, or the fallback poll once the listening connection
is terminated). Waits are hang guards, never goals: how soon is bench/loop.py's.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import asyncpg
import httpx
import pytest
from sqlalchemy import event

from bot.api.services import Services
from bot.store.notifications import ChangeFeed
from tests.conftest import Clock, DatabaseUnderTest, _plain_postgres_url
from tests.controls.conftest import AUTH, build_app

pytestmark = pytest.mark.postgres

TOOL = "support-assistant.tools.web_search.enabled"
FLAG = f"/ofrep/v1/evaluate/flags/{TOOL}"
GUARD = 30.0  # seconds: a hang guard, not a goal
NEVER = 3600.0  # a polling period no test waits for


class Replica:
    def __init__(self, services: Services, client: httpx.AsyncClient) -> None:
        self.services = services
        self.client = client

    @property
    def feed(self) -> ChangeFeed:
        assert self.services.feed is not None
        return self.services.feed

    async def served(self) -> object:
        response = await self.client.post(FLAG, json={})
        return response.json().get("value") if response.status_code == 200 else None

    async def put(self, value: bool) -> None:
        body = {"value": value, "reason": "test"}
        response = await self.client.put(f"/api/v1/controls/{TOOL}", json=body)
        assert response.status_code == 200, response.text


Start = Callable[[], Awaitable[Replica]]


@pytest.fixture
async def start_replica(
    postgres_database: DatabaseUnderTest, clock: Clock, runbooks_dir: Path
) -> AsyncIterator[Start]:
    stack = contextlib.AsyncExitStack()

    async def start() -> Replica:
        app = build_app(postgres_database, clock, runbooks_dir)
        await stack.enter_async_context(app.router.lifespan_context(app))
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://ballast.test", headers=AUTH
        )
        await stack.enter_async_context(client)
        replica = Replica(app.state.services, client)
        await until(lambda: replica.feed.listening, "the replica never listened")
        return replica

    async with stack:
        yield start


async def until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + GUARD
    while not condition():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.005)


async def served_eventually(replica: Replica, value: bool, what: str) -> None:
    deadline = time.monotonic() + GUARD
    while await replica.served() is not value:
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.005)


async def test_a_write_on_one_replica_is_served_by_the_other_by_notification(
    start_replica: Start,
) -> None:
    writer, reader = await start_replica(), await start_replica()
    reader.services.controls.max_staleness = NEVER
    reader.services.controls.notified_staleness = NEVER
    assert await reader.served() is None  # its copy: no value yet, kept for an hour
    statements: list[str] = []
    event.listen(
        writer.services.db.engine.sync_engine,
        "before_cursor_execute",
        lambda _conn, _cursor, statement, *_: statements.append(statement),
    )

    await writer.put(False)
    await served_eventually(reader, False, "the reader was not notified of the write")
    # The NOTIFY rides on the revision bump's RETURNING: no round trip of its own.
    notifying = [s for s in statements if "pg_notify" in s]
    assert len(notifying) == 1
    assert notifying[0].startswith("UPDATE control_revision")
    await writer.put(True)
    await served_eventually(reader, True, "the reader was not notified of the second write")
    bulk = await reader.client.post("/ofrep/v1/evaluate/flags", json={})
    assert bulk.headers["etag"] == await writer.services.controls.etag()


async def test_the_fallback_poll_serves_changes_when_notifications_are_lost(
    start_replica: Start,
) -> None:
    writer, reader = await start_replica(), await start_replica()
    controls = reader.services.controls
    controls.notified_staleness = NEVER
    controls.max_staleness = 0.2  # the fallback: polled while not listening
    reader.feed.reconnect_after = NEVER  # stays deaf: only the poll can tell it
    assert await reader.served() is None
    pid = reader.feed.backend_pid

    admin = await asyncpg.connect(_plain_postgres_url())
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()
    await until(lambda: not reader.feed.listening, "the reader did not notice the lost listener")
    await writer.put(False)
    await served_eventually(reader, False, "the fallback poll did not serve the change")
    assert reader.feed.connections == 1  # not by reconnecting: by polling


async def test_changes_are_served_after_the_listener_reconnects(start_replica: Start) -> None:
    writer, reader = await start_replica(), await start_replica()
    controls = reader.services.controls
    controls.max_staleness = NEVER
    controls.notified_staleness = NEVER
    reader.feed.reconnect_after = 0.05
    assert await reader.served() is None

    admin = await asyncpg.connect(_plain_postgres_url())
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", reader.feed.backend_pid)
    finally:
        await admin.close()
    await until(lambda: reader.feed.connections == 2, "the reader never reconnected")
    await until(lambda: reader.feed.listening, "the reader is not listening again")
    assert await reader.served() is None  # re-read on reconnecting; kept for an hour again
    await writer.put(False)
    await served_eventually(reader, False, "no notification after reconnecting")
