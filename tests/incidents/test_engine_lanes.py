"""PostgreSQL: the engine keeps a second batch in flight while the first waits for the server.

What must hold is what holds for several replicas: every alert processed exactly once, counts
that match the rows, one ``opened`` per incident; a failure starts no further batch, lets the
one in flight commit, and leaves its own rows for the next pass. The in-flight count is
measured, and one lane is the control that shows the measure can fail.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from bot.incidents import engine as engine_module
from bot.incidents.batch import run_batch
from bot.incidents.engine import IncidentEngine
from bot.intake.alert import AlertBatch, AlertSource
from bot.metrics import Metrics
from bot.runbooks.catalog import LiveCatalog
from bot.runbooks.loader import load_catalog
from bot.store import inbox
from bot.store import incidents as repo
from bot.store.database import Database
from bot.store.ingest_pacing import ENGINE_LAG_TARGET_SECONDS, IngestPacing
from tests.conftest import Clock
from tests.incidents.test_engine import RUNBOOKS, T0, alert, recount

pytestmark = pytest.mark.parametrize("database_kind", ["postgres"])

ALERTS = 120
INCIDENTS = 4
BATCH = 10


class Batches:
    """Wraps the engine's batch work: counts the batches in it at once; may fail one."""

    def __init__(self, fail_call: int | None = None) -> None:
        self.real = run_batch
        self.calls = 0
        self.in_flight = 0
        self.most = 0
        self.fail_call = fail_call
        self.two_in_flight = asyncio.Event()
        self.order: list[str] = []  # "start N" / "end N", N the call's number
        self.on_start: Callable[[int], None] | None = None

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        call = self.calls
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        if self.in_flight >= 2:
            self.two_in_flight.set()
        self.order.append(f"start {call}")
        if self.on_start is not None:
            self.on_start(call)
        try:
            if call == self.fail_call:
                raise RuntimeError("injected: this batch fails")
            # A batch that waits a moment before its statements: the next lane, started once
            # this one's claim returned, gets here meanwhile if it can.
            await asyncio.sleep(0.05)
            return await self.real(*args, **kwargs)
        finally:
            self.in_flight -= 1
            self.order.append(f"end {call}")


@pytest.fixture
def batches(monkeypatch: pytest.MonkeyPatch) -> Batches:
    wrapped = Batches()
    monkeypatch.setattr(engine_module, "run_batch", wrapped)
    return wrapped


def engine_of(
    db: Database, clock: Clock, lanes: int | None = None, pacing: IngestPacing | None = None
) -> IncidentEngine:
    """``lanes`` None: the engine's own default."""
    load = load_catalog([RUNBOOKS])
    assert load.catalog is not None, load.diagnostics
    return IncidentEngine(
        db,
        LiveCatalog(load.catalog),
        Metrics(),
        clock=clock,
        batch_size=BATCH,
        lanes=lanes,
        pacing=pacing,
    )


async def store_storm(db: Database, clock: Clock) -> None:
    alerts = [
        alert(f"fp{i}", service=f"svc-{i % INCIDENTS}", starts_at=T0 + timedelta(seconds=i))
        for i in range(ALERTS)
    ]
    async with db.transaction() as session:
        batch = AlertBatch(source=AlertSource.ALERTMANAGER, alerts=alerts)
        await inbox.store_batch(session, batch, clock())


async def assert_each_alert_once(db: Database) -> None:
    async with db.sessions() as session:
        left = await inbox.count_unprocessed(session)
        incidents = await repo.list_incidents(session)
    assert left == 0
    assert sorted(i.alert_count for i in incidents) == [ALERTS // INCIDENTS] * INCIDENTS
    for incident in incidents:
        assert (incident.alert_count, incident.firing_count) == await recount(db, incident.id)
        async with db.sessions() as session:
            kinds = [e.kind for e in await repo.timeline_of(session, incident.id)]
        assert kinds.count("opened") == 1
        assert kinds.count("alert_firing") == ALERTS // INCIDENTS


@pytest.mark.parametrize("lanes", [2, 1])
async def test_batches_overlap_and_each_alert_is_processed_once(
    db: Database, clock: Clock, batches: Batches, lanes: int
) -> None:
    await store_storm(db, clock)
    engine = engine_of(db, clock, lanes)
    assert await engine.process_pending() == ALERTS
    assert batches.most == lanes  # one lane: never two at once (the measure can fail)
    # (Two lanes opening the same incidents at once: one of them is redone, as a replica's.)
    assert batches.calls >= ALERTS // BATCH
    await assert_each_alert_once(db)
    assert await engine.process_pending() == 0


async def test_the_default_on_postgresql_is_two_lanes(
    db: Database, clock: Clock, batches: Batches
) -> None:
    engine = engine_of(db, clock)
    await store_storm(db, clock)
    assert await engine.process_pending() == ALERTS
    assert batches.most == engine_module.POSTGRES_LANES == 2


async def test_a_failed_batch_starts_no_other_and_its_rows_wait_for_the_next_pass(
    db: Database, clock: Clock, batches: Batches
) -> None:
    batches.fail_call = 2  # the second batch, in flight beside the first
    await store_storm(db, clock)
    engine = engine_of(db, clock, lanes=2)
    with pytest.raises(RuntimeError, match="injected"):
        await engine.process_pending()
    # The first batch committed; the second failed at once (rolled back) while the first was
    # in flight, and nothing started after it.
    assert batches.calls == 2
    async with db.sessions() as session:
        left = await inbox.count_unprocessed(session)
    assert left == ALERTS - BATCH
    assert await engine.process_pending() == ALERTS - BATCH
    await assert_each_alert_once(db)


class Storm(IngestPacing):
    """Webhooks arriving all along (busy), and no rests: only the lanes are under test.
    ``waiting``: whether one is queued or being written whenever the engine looks."""

    def __init__(self, waiting: bool = True) -> None:
        super().__init__(lambda: waiting, "postgresql")

    @property
    def busy(self) -> bool:
        return True

    async def pace_engine(
        self, worked: float | None = None, *, stop: asyncio.Event | None = None
    ) -> None:
        return None


async def test_while_webhooks_arrive_one_batch_at_a_time(
    db: Database, clock: Clock, batches: Batches
) -> None:
    """Webhooks first: a second batch in flight would take more of the loop from them."""
    engine = engine_of(db, clock, lanes=2, pacing=Storm())
    await store_storm(db, clock)
    assert await engine.process_pending() == ALERTS
    assert batches.most == 1
    await assert_each_alert_once(db)


@pytest.mark.parametrize(("waiting", "lanes"), [(False, 2), (True, 1)])
async def test_behind_a_storm_a_second_lane_starts_while_no_webhook_waits(
    db: Database, clock: Clock, batches: Batches, waiting: bool, lanes: int
) -> None:
    """Webhooks first, never starved: with a backlog older than the pacing's lag target, one
    lane left the engine waiting for PostgreSQL in series with its own CPU; a second starts
    only while no webhook is queued or being written (else it would take their loop)."""
    pacing = Storm(waiting)
    engine = engine_of(db, clock, lanes=2, pacing=pacing)
    await store_storm(db, clock)
    clock.advance(seconds=ENGINE_LAG_TARGET_SECONDS)  # the oldest row is this old when claimed
    assert not pacing.behind  # nothing claimed yet: no lag known
    assert await engine.process_pending() == ALERTS
    assert pacing.behind
    assert batches.most == lanes
    await assert_each_alert_once(db)


class Written(Storm):
    """Webhooks waiting until :meth:`write`: then none is, and the writer says so."""

    def __init__(self) -> None:
        self.waiting = True
        IngestPacing.__init__(self, lambda: self.waiting, "postgresql")

    def write(self) -> None:
        self.waiting = False
        self.webhooks_written()


@pytest.mark.parametrize("written", [True, False])
async def test_behind_a_storm_the_next_lane_starts_the_moment_no_webhook_waits(
    db: Database, clock: Clock, batches: Batches, written: bool
) -> None:
    """Not only when the batch in flight ends: on a slower machine, a second lane found only
    at batch boundaries left the core idle while the inbox lag grew (a 60 s storm at 3,000
    alerts/s: lag p99 3.2-8.6 s, then 1.5-1.8 s). The webhooks are written while the first
    batch is in flight; the control, where they never are, keeps one lane."""
    pacing = Written()
    engine = engine_of(db, clock, lanes=2, pacing=pacing)
    await store_storm(db, clock)
    clock.advance(seconds=ENGINE_LAG_TARGET_SECONDS)
    if written:
        # While the first batch is in flight (its 50 ms before its statements), not before
        # the engine looked for a free lane (then it would start the next one anyway).
        loop = asyncio.get_running_loop()

        def write_during_the_first(call: int) -> None:
            if call == 1:
                loop.call_later(0.01, pacing.write)

        batches.on_start = write_during_the_first
    assert await engine.process_pending() == ALERTS
    assert pacing.behind
    overlapped = batches.order.index("start 2") < batches.order.index("end 1")
    assert overlapped is written, batches.order
    if not written:
        assert batches.most == 1
    await assert_each_alert_once(db)


async def test_cancelled_mid_pass_every_batch_in_flight_is_cancelled_and_nothing_is_lost(
    db: Database, clock: Clock, batches: Batches
) -> None:
    """The worker cancelled after its grace at shutdown: the batches in flight are cancelled
    and waited for (none goes on in the background), and their rows are the next pass's."""
    await store_storm(db, clock)
    engine = engine_of(db, clock, lanes=2)
    task = asyncio.create_task(engine.process_pending())
    async with asyncio.timeout(10):
        await batches.two_in_flight.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert batches.in_flight == 0
    assert await engine.process_pending() == ALERTS  # neither had committed: all redone
    await assert_each_alert_once(db)
