"""Ingest pacing: the engine takes small, paced batches only while webhooks are arriving."""

from __future__ import annotations

import time

from bot.store.ingest_pacing import (
    ENGINE_BATCH_UNDER_INGEST,
    INGEST_BUSY_ALERTS,
    INGEST_BUSY_COMMITS,
    IngestPacing,
)


def test_idle_means_full_batches() -> None:
    pacing = IngestPacing(lambda: False)
    assert not pacing.busy
    assert pacing.engine_batch("sqlite", 200) == 200


def test_a_webhook_in_the_writer_means_busy() -> None:
    writing = True
    pacing = IngestPacing(lambda: writing)
    assert pacing.busy
    assert pacing.engine_batch("sqlite", 200) == ENGINE_BATCH_UNDER_INGEST["sqlite"]
    assert pacing.engine_batch("postgresql", 200) == ENGINE_BATCH_UNDER_INGEST["postgresql"]
    assert pacing.engine_batch("postgresql", 5) == 5
    writing = False
    assert not pacing.busy


def test_a_storm_of_commits_or_alerts_means_busy() -> None:
    by_commits = IngestPacing(lambda: False)
    for _ in range(INGEST_BUSY_COMMITS - 1):
        by_commits.committed(1)
    assert not by_commits.busy  # a trickle
    by_commits.committed(1)
    assert by_commits.busy
    by_alerts = IngestPacing(lambda: False)
    by_alerts.committed(INGEST_BUSY_ALERTS)
    assert by_alerts.busy


async def test_the_engine_rests_in_proportion_under_load() -> None:
    pacing = IngestPacing(lambda: True)
    await pacing.pace_engine()  # the first call rests the cap (no batch timed yet)
    time.sleep(0.02)  # the engine "worked" 20 ms
    started = time.monotonic()
    await pacing.pace_engine()
    rested = time.monotonic() - started
    assert 0.05 <= rested < 0.5  # three times the work at a 25% share
    idle = IngestPacing(lambda: False)
    started = time.monotonic()
    await idle.pace_engine()
    assert time.monotonic() - started < 0.01
