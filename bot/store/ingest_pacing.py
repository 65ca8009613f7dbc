"""Ingest pacing: while webhooks arrive at a storm's rate, the incident engine keeps to a share
of the event loop and takes small batches, so that it does not hold up the webhooks.

The webhooks and the engine share one event loop (and on SQLite one write lock). Unpaced, the
engine took all the CPU the webhooks left and every webhook queued behind it; paced, a storm is
stored at once and processed as fast as the engine's share allows, then at full speed once the
storm is over (the inbox is what makes that safe). One :class:`IngestPacing` belongs to the
inbox writer of a database, which reports its commits to it; whoever builds the writer hands
its pacing to the incident engine (``bot.app``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

# While webhooks are arriving, rows per incident-engine transaction. SQLite: the engine holds
# the write lock from its first row to its commit (a few ms per alert) and every webhook waits
# for it, so a 200-row batch was a 0.5-1 s webhook stall. PostgreSQL: no such wait, but shorter
# batches interleave better with the webhooks on the one event loop. Without webhooks arriving
# the engine takes its full batch.
ENGINE_BATCH_UNDER_INGEST = {"sqlite": 1, "postgresql": 20}
# While webhooks are arriving, the share of the time the incident engine may spend on batches.
# Its work is a few ms of CPU per alert on the event loop it shares with the webhooks; unpaced,
# it took all the CPU the webhooks left and every webhook queued behind it. Paced, a storm is
# stored at once and processed as fast as this share allows, then at full speed once the storm
# is over (the inbox is what makes that safe).
ENGINE_SHARE_UNDER_INGEST = 0.25
ENGINE_MAX_PAUSE_SECONDS = 2.0
# The batched engine (bot.incidents.batch) processes an alert in a tenth of the per-alert path's
# CPU, and most of a transaction's time is its dozen statements and its commit whatever its
# size, so under a storm it takes this many rows per transaction. Not sized from the
# transaction's wall time: at a storm's rate that is mostly the wait for the busy event loop,
# and batches sized from it shrank to one row and starved the engine. SQLite: a webhook waits
# for the batch's write lock (about 20 ms at 200 rows); at 100 the engine under a 3,000
# alerts/s intake took 4,200 alerts/s over 2,000 incidents, at 200 5,060 (webhook p99 in that
# phase 31-43 -> 48-56 ms; at 3,000 alerts/s without a backlog 37 -> 39 ms, noise).
# PostgreSQL: 400 rows took more (5,500 -> 6,380 alerts/s, a storm into 20 incidents) but,
# with its share at 0.85 too, bench/ingest.py's webhooks lost (see the share below): kept at
# 200 (issue 16, docs/benchmarks.md).
ENGINE_BATCHED_UNDER_INGEST = {"sqlite": 200, "postgresql": 200}
# Webhooks first, but the engine is never starved: its share of the time under a storm rises
# with the inbox lag it reports, from ENGINE_SHARE_UNDER_INGEST at no lag to this share at
# ENGINE_LAG_TARGET_SECONDS and beyond. SQLite: behind, the engine is what delays incidents, and
# what the webhooks wait for is the write lock and the disk more than the loop; at 0.75 the
# engine under a 3,000 alerts/s intake took 4,870 alerts/s (a storm into 20 incidents), at 0.85
# 5,490, webhook p99 in that phase 41-49 -> 47-53 ms, at 3,000 alerts/s without a backlog 38 ->
# 37 ms. PostgreSQL stays at 0.75: there the engine's batches take the loop the webhooks need,
# and with 0.85 (and 400-row batches) bench/ingest.py's webhook p99 at 3,000 alerts/s went 18
# -> 25 ms (issue 16, docs/benchmarks.md).
ENGINE_MAX_SHARE_UNDER_INGEST = {"sqlite": 0.85, "postgresql": 0.75}
ENGINE_LAG_TARGET_SECONDS = 0.5
# Webhooks count as arriving while one is queued or being written, or while the writer has
# committed at least this many groups or alerts in the current or the last half second (a
# storm, not a trickle: at a few webhooks a second the engine keeps up and nothing needs
# pacing; alerts too, because 50-alert notifications make a storm of few requests).
INGEST_WINDOW_SECONDS = 0.5
INGEST_BUSY_COMMITS = 10
INGEST_BUSY_ALERTS = 200


class IngestPacing:
    """How busy the webhooks are, and the engine's pacing under that load.

    ``writing`` answers whether a webhook is queued or being written right now (the writer's
    own state); :meth:`committed` is called by the writer after each group commit.
    """

    def __init__(self, writing: Callable[[], bool], dialect: str) -> None:
        """``dialect``: the database's (``sqlite`` or ``postgresql``): the engine's batch sizes
        and its share under a storm are chosen per database (see the constants above)."""
        if dialect not in ENGINE_MAX_SHARE_UNDER_INGEST:
            known = ", ".join(sorted(ENGINE_MAX_SHARE_UNDER_INGEST))
            raise ValueError(f"no ingest pacing for database {dialect!r} (known: {known})")
        self._writing = writing
        self._max_share = ENGINE_MAX_SHARE_UNDER_INGEST[dialect]
        self._batch_under_ingest = ENGINE_BATCH_UNDER_INGEST[dialect]
        self._batched_under_ingest = ENGINE_BATCHED_UNDER_INGEST[dialect]
        self._window_start = 0.0
        self._commits = 0
        self._commits_before = 0
        self._alerts = 0
        self._alerts_before = 0
        self._engine_started: float | None = None  # None: no batch started yet
        self._engine_lag = 0.0
        # Set by the writer as it runs out of webhooks (``webhooks_written``), cleared by
        # whoever waits for that (``until_no_webhook_waits``).
        self._written = asyncio.Event()

    def engine_lag(self, seconds: float) -> None:
        """The batched engine's inbox lag: the age of the oldest row it just claimed."""
        self._engine_lag = max(0.0, seconds)

    @property
    def engine_share(self) -> float:
        """The engine's share of the time while webhooks arrive (rises with its lag)."""
        behind = min(1.0, self._engine_lag / ENGINE_LAG_TARGET_SECONDS)
        return ENGINE_SHARE_UNDER_INGEST + behind * (self._max_share - ENGINE_SHARE_UNDER_INGEST)

    @property
    def behind(self) -> bool:
        """The engine's inbox lag is at the target or beyond: its share is at its most, and on
        PostgreSQL it may start a second batch under a storm while no webhook waits
        (``bot.incidents.engine``): webhooks first, but the engine is never starved."""
        return self._engine_lag >= ENGINE_LAG_TARGET_SECONDS

    @property
    def webhooks_waiting(self) -> bool:
        """A webhook is queued or being written right now."""
        return self._writing()

    def webhooks_written(self) -> None:
        """The writer has no webhook queued or being written any more."""
        self._written.set()

    async def until_no_webhook_waits(self) -> None:
        """Return once no webhook is queued or being written (at once if none is)."""
        while self._writing():
            self._written.clear()
            await self._written.wait()

    def engine_rows(self) -> int | None:
        """Rows one batched engine transaction takes now (None: no storm, its own size)."""
        return self._batched_under_ingest if self.busy else None

    async def pace_engine(
        self, worked: float | None = None, *, stop: asyncio.Event | None = None
    ) -> None:
        """Called as the engine starts a batch: under webhook load, rest in proportion to the
        time it worked since its last batch started, so it keeps to its share of the loop.

        ``worked``: what the batched engine measured of its own batches since it last paced
        (its own CPU on the loop, :mod:`bot.runtime.cpu_meter`, not the webhooks' served in
        its waits, or on SQLite the time it held the write lock if longer); by default the
        wall time since the last batch started, which also counts the waits for the database
        that leave the loop to the webhooks (on PostgreSQL most of a batch's time). Those waits
        are not credited against the rest: tried, the engine then took its whole share on
        PostgreSQL and the webhooks' p99 under a storm rose 31.5 -> 43.1 ms (issue 16,
        docs/benchmarks.md). Nothing is timed before the first batch, so it does not rest.
        ``stop`` (the worker stopping) ends a rest: a shutdown never waits for one.
        """
        now = time.monotonic()
        started, self._engine_started = self._engine_started, now
        if worked is None:
            worked = 0.0 if started is None else now - started
        if not self.busy:
            return
        share = self.engine_share
        rest = min(worked * (1 - share) / share, ENGINE_MAX_PAUSE_SECONDS)
        if rest <= 0:
            return
        if stop is None:
            await asyncio.sleep(rest)
        else:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), rest)
        self._engine_started = time.monotonic()

    def engine_batch(self, limit: int) -> int:
        """Rows the per-alert engine may take in one transaction now."""
        if self.busy:
            return min(limit, self._batch_under_ingest)
        return limit

    @property
    def busy(self) -> bool:
        """Webhooks are arriving: queued, being written, or committed at a storm's rate."""
        if self._writing():
            return True
        self._roll_window(time.monotonic())
        return (
            max(self._commits, self._commits_before) >= INGEST_BUSY_COMMITS
            or max(self._alerts, self._alerts_before) >= INGEST_BUSY_ALERTS
        )

    def _roll_window(self, now: float) -> None:
        if now - self._window_start >= INGEST_WINDOW_SECONDS:
            recent = now - self._window_start < 2 * INGEST_WINDOW_SECONDS
            self._commits_before = self._commits if recent else 0
            self._alerts_before = self._alerts if recent else 0
            self._commits, self._alerts, self._window_start = 0, 0, now

    def committed(self, alerts: int) -> None:
        """The writer committed one group of ``alerts`` rows."""
        self._roll_window(time.monotonic())
        self._commits += 1
        self._alerts += alerts
