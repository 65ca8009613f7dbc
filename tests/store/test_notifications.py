"""The change feed: PostgreSQL notifications from another process's commit, and what happens
when the listening connection is lost. Real PostgreSQL, real sessions; no sleeps as assertions
(every wait is a hang guard far longer than the thing waited for)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import text

from bot.slack.outbox import SlackOutbox
from bot.store.database import Database
from bot.store.notifications import ChangeFeed, Channel, notify
from tests.conftest import DatabaseUnderTest, _plain_postgres_url

GUARD = 30.0  # seconds: a hang guard, not a goal


async def eventually(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + GUARD
    while not condition():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.005)


class Counter:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> None:
        self.calls += 1


@pytest.fixture
async def dbs(postgres_database: DatabaseUnderTest) -> AsyncIterator[tuple[Database, Database]]:
    """Two engines on one schema: the listening process and the writing one."""
    listening, writing = postgres_database.make(), postgres_database.make()
    await listening.migrate()
    yield listening, writing
    await listening.close()
    await writing.close()


@contextlib.asynccontextmanager
async def running(feed: ChangeFeed) -> AsyncIterator[ChangeFeed]:
    task = asyncio.create_task(feed.run())
    try:
        await eventually(lambda: feed.listening, "the feed never listened")
        yield feed
    finally:
        await feed.stop(task)


@pytest.mark.postgres
async def test_a_commit_elsewhere_calls_the_channel_subscribers(
    dbs: tuple[Database, Database],
) -> None:
    listening, writing = dbs
    feed = ChangeFeed(listening)
    controls, outbox = Counter(), Counter()
    feed.subscribe(Channel.CONTROLS, controls)
    feed.subscribe(Channel.SLACK_OUTBOX, outbox)
    async with running(feed):
        assert (controls.calls, outbox.calls) == (1, 1)  # once on connecting: re-read all

        async with writing.transaction() as session:
            await notify(session, Channel.CONTROLS)
            await notify(session, Channel.CONTROLS)  # one transaction: delivered once
        await eventually(lambda: controls.calls == 2, "no notification after the commit")

        # A rolled-back transaction notifies nobody; the commit after it proves the feed
        # has seen everything sent before (notifications arrive in commit order).
        with contextlib.suppress(RuntimeError):
            async with writing.transaction() as session:
                await notify(session, Channel.CONTROLS)
                raise RuntimeError("rolled back")
        async with writing.transaction() as session:
            await notify(session, Channel.SLACK_OUTBOX)
        await eventually(lambda: outbox.calls == 2, "no outbox notification")
        assert controls.calls == 2


@pytest.mark.postgres
async def test_other_schemas_and_own_notifications_are_ignored(
    dbs: tuple[Database, Database],
) -> None:
    listening, writing = dbs
    feed = ChangeFeed(listening)
    controls = Counter()
    feed.subscribe(Channel.CONTROLS, controls)
    async with running(feed):
        async with writing.engine.begin() as conn:
            # Another deployment in the same database (its own schema) changed its values.
            other = "json_build_object('schema', 'someone_else', 'origin', 'x')::text"
            await conn.execute(text(f"SELECT pg_notify('ballast_controls', {other})"))
            await conn.execute(text("SELECT pg_notify('ballast_controls', 'not json')"))
        async with listening.transaction() as session:
            await notify(session, Channel.CONTROLS)  # this replica's own: applied in-process
        async with writing.transaction() as session:
            await notify(session, Channel.CONTROLS)
        await eventually(lambda: controls.calls >= 2, "the other replica's never arrived")
        assert controls.calls == 2  # connect + the other replica's only


@pytest.mark.postgres
async def test_queueing_a_slack_call_notifies_every_replica(
    dbs: tuple[Database, Database],
) -> None:
    """The replica holding the sender lease may not be the one that queued the call."""
    listening, writing = dbs
    feed = ChangeFeed(listening)
    elsewhere = Counter()
    feed.subscribe(Channel.SLACK_OUTBOX, elsewhere)
    here = Counter()
    outbox = SlackOutbox(clock=lambda: datetime.now(UTC), on_commit=here)
    async with running(feed):
        async with writing.transaction() as session:
            await outbox.notify(session, "C0123", {"text": "hello"}, "test:1")
        await eventually(lambda: elsewhere.calls == 2, "the other replica was not woken")
        assert here.calls == 1  # and the writer's own worker, after the commit


@pytest.mark.postgres
async def test_a_lost_connection_stops_listening_then_reconnects_and_rereads(
    dbs: tuple[Database, Database],
) -> None:
    listening, writing = dbs
    feed = ChangeFeed(listening, reconnect_after=0.05)
    controls = Counter()
    feed.subscribe(Channel.CONTROLS, controls)
    async with running(feed):
        assert feed.backend_pid is not None
        admin = await asyncpg.connect(_plain_postgres_url())
        try:
            killed = await admin.fetchval("SELECT pg_terminate_backend($1)", feed.backend_pid)
        finally:
            await admin.close()
        assert killed
        await eventually(lambda: feed.connections == 2, "the feed never reconnected")
        await eventually(lambda: feed.listening, "the feed is not listening again")
        assert controls.calls == 2  # re-read on reconnecting: changes in the gap were missed
        async with writing.transaction() as session:
            await notify(session, Channel.CONTROLS)
        await eventually(lambda: controls.calls == 3, "no notification after reconnecting")


async def test_sqlite_has_no_feed(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/feed.db")
    try:
        feed = ChangeFeed(db)
        await feed.run()  # returns at once
        assert not feed.enabled
        assert not feed.listening
    finally:
        await db.close()
