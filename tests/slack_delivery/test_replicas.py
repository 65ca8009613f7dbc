"""Several replicas on one PostgreSQL: one sender spends the budget; failover takes over."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from bot.slack.delivery import SlackDelivery
from bot.store.database import Database
from tests.conftest import Clock, DatabaseUnderTest
from tests.slack_delivery.conftest import INCIDENTS, LEASE, Rig, message
from tests.slack_emulator import SlackEmulator

pytestmark = pytest.mark.postgres


@pytest.fixture
async def replicas(
    postgres_database: DatabaseUnderTest, slack: SlackEmulator, clock: Clock
) -> AsyncIterator[tuple[Rig, Rig]]:
    databases: list[Database] = []
    rigs = []
    for _ in range(2):
        db: Database = postgres_database.make()
        await db.migrate()
        databases.append(db)
        rigs.append(Rig(db, slack, clock))
    yield rigs[0], rigs[1]
    for rig in rigs:
        await rig.close()
    for db in databases:
        await db.close()


async def step_both(a: Rig, b: Rig, seconds: float) -> None:
    a.clock.advance(seconds=seconds)
    await asyncio.gather(a.delivery.drain(), b.delivery.drain())
    # Both rigs share one Slack emulation and clock; stamp the calls on both, since either
    # may turn out to be the sender (stamping only ``a`` was a KeyError whenever ``b`` won).
    for call in a.slack.calls():
        for rig in (a, b):
            rig.stamps.setdefault(call.seq, a.clock())


async def test_one_replica_sends_and_the_other_takes_over_when_it_dies(
    replicas: tuple[Rig, Rig],
) -> None:
    a, b = replicas
    for n in range(8):
        incident = await a.incident(f"i{n}")
        await a.enqueue(
            lambda s, i=incident: a.outbox.post_incident_message(s, i, INCIDENTS.id, message("x"))
        )
    sent_by: dict[str, int] = {}
    for rig, name in ((a, "a"), (b, "b")):
        original = rig.delivery.deliver_once

        async def counting(original=original, name=name):  # type: ignore[no-untyped-def]
            result = await original()
            sent_by[name] = sent_by.get(name, 0) + result.done
            return result

        rig.delivery.deliver_once = counting  # type: ignore[method-assign]

    for _ in range(4):
        await step_both(a, b, 0.5)
    assert sorted(sent_by.values()) == [0, 4], "exactly one replica sends"
    leader, follower = (a, b) if sent_by["a"] else (b, a)
    calls = leader.calls("chat.postMessage")
    times = leader.times(calls)
    assert times == [0.0, 0.0, 0.0, 1.0], "one budget, not one per replica"

    await leader.delivery.close()  # the sender dies; PostgreSQL drops its lock
    await follower.delivery.drain()
    for _ in range(20):
        await step_both(a, b, 0.5)
    assert len(follower.slack.messages(INCIDENTS.id)) == 8
    assert await follower.active() == 0


async def test_a_row_left_sending_by_a_dead_replica_is_recovered_by_another(
    replicas: tuple[Rig, Rig],
) -> None:
    a, b = replicas
    incident = await a.incident()
    await a.enqueue(
        lambda s: a.outbox.post_incident_message(s, incident, INCIDENTS.id, message("x"))
    )
    from tests.slack_delivery.conftest import dying, kill

    client = dying(a, "chat.postMessage", after_slack=True)
    a.delivery = a.new_delivery(client_factory=lambda: client)
    worker = asyncio.create_task(a.delivery.drain())
    await asyncio.wait_for(client.dead.wait(), 5)
    await kill(worker)
    for delivery in a.deliveries:
        await delivery.close()
    b.clock.advance(seconds=LEASE.total_seconds() + 1)
    await b.delivery.drain()
    assert len(b.slack.messages(INCIDENTS.id)) == 1
    assert await b.active() == 0


def test_the_lease_needs_a_longer_lease_than_a_call(db: Database, clock: Clock) -> None:
    from bot.slack.budgets import SlackBudgets

    with pytest.raises(ValueError, match="must be at least twice call_timeout"):
        SlackDelivery(db, lambda: None, clock, SlackBudgets(clock), call_timeout=90.0)  # type: ignore[arg-type, return-value]
