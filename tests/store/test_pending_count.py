"""``PendingCount``: /metrics' count of the unprocessed inbox is kept for a multiple of what the
count cost, and counted afresh after it."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from bot.intake.alert import Alert, AlertBatch, AlertSource, AlertStatus
from bot.store import inbox
from bot.store.database import Database
from tests.conftest import Clock


class CountingClock:
    """Monotonic seconds, moved by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def _store(db: Database, clock: Clock, first: int, count: int) -> None:
    alerts = [
        Alert(
            fingerprint=f"pending-{i}",
            status=AlertStatus.FIRING,
            labels={"alertname": "Pending"},
            starts_at=clock(),
            source=AlertSource.ALERTMANAGER,
        )
        for i in range(first, first + count)
    ]
    async with db.transaction() as session:
        await inbox.store_batch(
            session, AlertBatch(source=AlertSource.ALERTMANAGER, alerts=alerts), clock()
        )


async def _read(db: Database, pending: inbox.PendingCount) -> int:
    async with db.sessions() as session:
        return await pending.read(session)


async def test_the_count_is_kept_for_its_cost_times_the_factor_then_counted_again(
    db: Database, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monotonic = CountingClock()
    counted: list[int] = []
    real_count = inbox.count_unprocessed

    async def slow_count(session: AsyncSession) -> int:
        value = await real_count(session)
        monotonic.now += 0.5  # this count took half a second
        counted.append(value)
        return value

    monkeypatch.setattr(inbox, "count_unprocessed", slow_count)
    pending = inbox.PendingCount(cost_factor=20.0, clock=monotonic)

    await _store(db, clock, 0, 3)
    assert await _read(db, pending) == 3
    await _store(db, clock, 3, 2)
    monotonic.now += 9.0  # 9.5 s since the count began: within its 10 s
    assert await _read(db, pending) == 3  # kept
    monotonic.now += 0.5  # 10 s: counted afresh
    assert await _read(db, pending) == 5
    assert counted == [3, 5]


async def test_a_cheap_count_is_made_for_every_read(db: Database, clock: Clock) -> None:
    monotonic = CountingClock()  # no time passes: a count that costs nothing is never kept
    pending = inbox.PendingCount(clock=monotonic)
    assert await _read(db, pending) == 0
    await _store(db, clock, 0, 4)
    assert await _read(db, pending) == 4
