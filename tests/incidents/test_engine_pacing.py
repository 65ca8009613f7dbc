"""Under a webhook storm the engine keeps to a share of the loop by resting in proportion to
what its last batch cost. On PostgreSQL a batch is mostly waits for the server, during which
the loop serves webhooks: the engine must be charged its own CPU, not theirs (it was: the
thread's CPU around the batch, and it rested for the webhooks' work too)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from bot.incidents.engine import IncidentEngine
from bot.intake.alert import Alert, AlertBatch, AlertSource, AlertStatus
from bot.metrics import Metrics
from bot.runbooks.catalog import LiveCatalog
from bot.runbooks.loader import load_catalog
from bot.store import inbox
from bot.store.database import Database
from bot.store.ingest_pacing import IngestPacing
from tests.conftest import Clock
from tests.runtime.test_cpu_meter import burn

RUNBOOKS = Path(__file__).resolve().parents[1] / "api" / "runbooks"
OTHERS_STEP_SECONDS = 0.01  # the "webhooks": CPU spent at every turn of the loop they get


class RecordingPacing(IngestPacing):
    """Busy (a storm) and never resting; records what each batch reported it cost."""

    def __init__(self) -> None:
        super().__init__(lambda: True, "postgresql")
        self.reported: list[float | None] = []

    async def pace_engine(
        self, worked: float | None = None, *, stop: asyncio.Event | None = None
    ) -> None:
        self.reported.append(worked)


@pytest.mark.parametrize("database_kind", ["postgres"])
async def test_a_batch_is_charged_its_own_cpu_not_the_webhooks_served_in_its_waits(
    db: Database, clock: Clock
) -> None:
    load = load_catalog([RUNBOOKS])
    assert load.catalog is not None, load.diagnostics
    pacing = RecordingPacing()
    engine = IncidentEngine(
        db,
        LiveCatalog(load.catalog),
        Metrics(),
        clock=clock,
        pacing=pacing,
        batch_size=20,
        lanes=1,  # each batch told what the one before it cost
    )
    alerts = [
        Alert(
            fingerprint=f"f{i}",
            status=AlertStatus.FIRING,
            labels={"alertname": f"Storm{i % 5}", "service": "support-assistant"},
            starts_at=clock(),
            source=AlertSource.ALERTMANAGER,
        )
        for i in range(60)
    ]
    async with db.transaction() as session:
        batch = AlertBatch(source=AlertSource.ALERTMANAGER, alerts=alerts)
        await inbox.store_batch(session, batch, clock())

    others = 0.0
    done = asyncio.Event()

    async def webhooks() -> None:
        nonlocal others
        while not done.is_set():
            started = time.thread_time()
            burn(OTHERS_STEP_SECONDS)
            others += time.thread_time() - started
            await asyncio.sleep(0)

    loader = asyncio.create_task(webhooks())
    try:
        assert await engine.process_pending() == 60
    finally:
        done.set()
        await loader
    # Three batches; the second and third are told what the one before cost.
    assert len(pacing.reported) == 3
    assert pacing.reported[0] is None
    charged = [worked for worked in pacing.reported[1:] if worked is not None]
    assert len(charged) == 2
    # Each batch waited on several round trips, each a turn for the "webhooks" (10 ms of CPU
    # each); its own CPU for 20 alerts is a few ms.
    assert others >= 3 * 5 * OTHERS_STEP_SECONDS, others
    # The thread's CPU around a batch held the "webhooks" of its waits: most of ``others``
    # (0.49 s per batch when this was found). Its own CPU is a small part of that, however
    # slow the machine (42 ms per 20-alert batch under coverage on a half-speed one, against
    # 1.47 s of "webhooks"): a fixed bound in ms failed there.
    assert all(worked > 0 for worked in charged), charged
    assert sum(charged) < others / 4, (charged, others)
