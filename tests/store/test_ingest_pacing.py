"""Ingest pacing: the engine takes small, paced batches only while webhooks are arriving."""

from __future__ import annotations

import asyncio
import time

import pytest

from bot.store.ingest_pacing import (
    ENGINE_BATCH_UNDER_INGEST,
    ENGINE_BATCHED_UNDER_INGEST,
    ENGINE_LAG_TARGET_SECONDS,
    ENGINE_MAX_PAUSE_SECONDS,
    ENGINE_MAX_SHARE_UNDER_INGEST,
    ENGINE_SHARE_UNDER_INGEST,
    INGEST_BUSY_ALERTS,
    INGEST_BUSY_COMMITS,
    IngestPacing,
)


def test_idle_means_full_batches() -> None:
    for dialect in ("sqlite", "postgresql"):
        pacing = IngestPacing(lambda: False, dialect)
        assert not pacing.busy
        assert pacing.engine_batch(200) == 200
        assert pacing.engine_rows() is None


def test_a_webhook_in_the_writer_means_busy() -> None:
    writing = True
    sqlite = IngestPacing(lambda: writing, "sqlite")
    postgres = IngestPacing(lambda: writing, "postgresql")
    assert sqlite.busy
    assert postgres.busy
    assert sqlite.engine_batch(200) == ENGINE_BATCH_UNDER_INGEST["sqlite"]
    assert postgres.engine_batch(200) == ENGINE_BATCH_UNDER_INGEST["postgresql"]
    assert postgres.engine_batch(5) == 5
    writing = False
    assert not sqlite.busy
    assert not postgres.busy


def test_a_storm_of_commits_or_alerts_means_busy() -> None:
    by_commits = IngestPacing(lambda: False, "sqlite")
    for _ in range(INGEST_BUSY_COMMITS - 1):
        by_commits.committed(1)
    assert not by_commits.busy  # a trickle
    by_commits.committed(1)
    assert by_commits.busy
    by_alerts = IngestPacing(lambda: False, "sqlite")
    by_alerts.committed(INGEST_BUSY_ALERTS)
    assert by_alerts.busy


async def test_the_engine_rests_in_proportion_under_load() -> None:
    pacing = IngestPacing(lambda: True, "sqlite")
    started = time.monotonic()
    await pacing.pace_engine()  # nothing timed yet: no rest
    assert time.monotonic() - started < 0.01
    time.sleep(0.02)  # the engine "worked" 20 ms
    started = time.monotonic()
    await pacing.pace_engine()
    rested = time.monotonic() - started
    assert 0.05 <= rested < 0.5  # three times the work at a 25% share
    idle = IngestPacing(lambda: False, "sqlite")
    started = time.monotonic()
    await idle.pace_engine()
    assert time.monotonic() - started < 0.01


def test_the_batched_engine_takes_fixed_batches_only_in_a_storm() -> None:
    writing = True
    sqlite = IngestPacing(lambda: writing, "sqlite")
    postgres = IngestPacing(lambda: writing, "postgresql")
    assert sqlite.engine_rows() == ENGINE_BATCHED_UNDER_INGEST["sqlite"]
    assert postgres.engine_rows() == ENGINE_BATCHED_UNDER_INGEST["postgresql"]
    writing = False
    assert sqlite.engine_rows() is None
    assert postgres.engine_rows() is None


def test_an_unknown_database_is_refused_not_paced_by_a_guess() -> None:
    with pytest.raises(ValueError, match="no ingest pacing for database 'mysql'"):
        IngestPacing(lambda: False, "mysql")


def test_the_engines_share_rises_with_its_lag_so_it_is_never_starved() -> None:
    pacing = IngestPacing(lambda: True, "sqlite")
    assert pacing.engine_share == ENGINE_SHARE_UNDER_INGEST
    pacing.engine_lag(ENGINE_LAG_TARGET_SECONDS / 2)
    assert ENGINE_SHARE_UNDER_INGEST < pacing.engine_share < ENGINE_MAX_SHARE_UNDER_INGEST["sqlite"]
    pacing.engine_lag(ENGINE_LAG_TARGET_SECONDS * 10)
    assert pacing.engine_share == ENGINE_MAX_SHARE_UNDER_INGEST["sqlite"]
    pacing.engine_lag(0.0)
    assert pacing.engine_share == ENGINE_SHARE_UNDER_INGEST
    postgres = IngestPacing(lambda: True, "postgresql")  # its own ceiling
    postgres.engine_lag(ENGINE_LAG_TARGET_SECONDS * 10)
    assert postgres.engine_share == ENGINE_MAX_SHARE_UNDER_INGEST["postgresql"]


async def test_the_rest_follows_the_work_the_engine_reports() -> None:
    """A batch that mostly waited for the database reports little work: the rest is in
    proportion to that, not to the batch's wall time."""
    pacing = IngestPacing(lambda: True, "sqlite")
    pacing.engine_lag(ENGINE_LAG_TARGET_SECONDS)  # lagging: share at its maximum
    started = time.monotonic()
    await pacing.pace_engine(0.03)
    rested = time.monotonic() - started
    share = ENGINE_MAX_SHARE_UNDER_INGEST["sqlite"]
    assert rested >= 0.03 * (1 - share) / share * 0.9
    started = time.monotonic()
    await pacing.pace_engine(0.0)
    assert time.monotonic() - started < rested


async def test_the_first_batch_does_not_rest_however_long_since_start() -> None:
    """Before any batch was timed there is nothing to rest in proportion to: the time since
    the process started is not work (it rested the 2 s cap, and a test's or a shutdown's
    engine stop waited for it)."""
    pacing = IngestPacing(lambda: True, "sqlite")
    time.sleep(0.05)  # the server started a while ago
    started = time.monotonic()
    await pacing.pace_engine()
    assert time.monotonic() - started < 0.01


async def test_stopping_ends_a_rest_at_once() -> None:
    pacing = IngestPacing(lambda: True, "sqlite")
    stop = asyncio.Event()
    asyncio.get_running_loop().call_later(0.05, stop.set)
    started = time.monotonic()
    await pacing.pace_engine(ENGINE_MAX_PAUSE_SECONDS * 10, stop=stop)  # would rest the cap
    assert time.monotonic() - started < ENGINE_MAX_PAUSE_SECONDS / 2


async def test_waiting_for_no_webhook_ends_when_the_writer_says_it_ran_out() -> None:
    """The engine behind a storm waits for a moment with no webhook queued or being written
    to start its next lane: at once when there is none, else when the writer says so."""
    writing = False
    pacing = IngestPacing(lambda: writing, "postgresql")
    async with asyncio.timeout(1):
        await pacing.until_no_webhook_waits()  # none waits: at once
    writing = True
    waiter = asyncio.create_task(pacing.until_no_webhook_waits())
    await asyncio.sleep(0.01)
    pacing.webhooks_written()  # said while one still waits (another writer's): not yet
    await asyncio.sleep(0.01)
    assert not waiter.done()
    writing = False
    pacing.webhooks_written()
    async with asyncio.timeout(1):
        await waiter
