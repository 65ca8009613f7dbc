"""Alert storms: Slack calls in proportion to incidents, not alerts, and every message
converging to its last state."""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from bot.slack.budgets import BudgetLimits
from bot.slack.outbox import Enqueued
from tests.slack_delivery.conftest import INCIDENTS, STORM, Rig, message, until
from tests.slack_emulator import SlackEmulator


async def test_a_hundred_updates_cost_at_most_two_calls_per_window(rig: Rig) -> None:
    incident = await rig.incident()
    await rig.enqueue(
        lambda s: rig.outbox.post_incident_message(s, incident, INCIDENTS.id, message("v0"))
    )
    await rig.step()
    for n in range(1, 101):
        await rig.enqueue(
            lambda s, n=n: rig.outbox.update_incident_message(s, incident, message(f"v{n}"))
        )
        await rig.step(0.1)  # 100 changes in 10 s, well inside one 15 s window
    assert rig.slack.count("chat.update") == 1
    await rig.settle()
    updates = rig.calls("chat.update")
    assert [c.args["text"] for c in updates] == ["v1", "v100"]
    assert 15.0 <= rig.times(updates)[1] < 15.5  # not before the 15 s spacing
    stored = await rig.message_of(incident)
    assert stored is not None
    assert rig.slack.message(INCIDENTS.id, stored.ts)["text"] == "v100"
    assert len(await rig.rows()) == 3  # the post and two update rows, not 100


async def test_a_thousand_updates_over_twenty_incidents(rig: Rig) -> None:
    """The issue's storm: 1,000 alerts in 20 groups, arriving over 10 s, 4 channels."""
    incidents = [await rig.incident(f"group {n}") for n in range(20)]
    channel_of = {incident: STORM[n % 4].id for n, incident in enumerate(incidents)}
    last: dict[int, str] = {}
    outcomes: Counter[Enqueued] = Counter()
    for n in range(1000):
        incident = incidents[n % 20]
        text = f"{n // 20 + 1} alerts firing"
        if incident not in last:
            outcomes[
                await rig.enqueue(
                    lambda s, i=incident, t=text: rig.outbox.post_incident_message(
                        s, i, channel_of[i], message(t)
                    )
                )
            ] += 1
        else:
            outcomes[
                await rig.enqueue(
                    lambda s, i=incident, t=text: rig.outbox.update_incident_message(
                        s, i, message(t)
                    )
                )
            ] += 1
        last[incident] = text
        if n % 10 == 9:
            await rig.step(0.1)
    took = await rig.settle()

    per_incident: Counter[int] = Counter()
    ts_of = {}
    for incident in incidents:
        stored = await rig.message_of(incident)
        assert stored is not None
        ts_of[stored.ts] = incident
        assert rig.slack.message(stored.channel, stored.ts)["text"] == last[incident]
    for call in rig.calls():
        assert call.status == 200, call
        ts = call.response.get("ts")
        per_incident[ts_of[ts]] += 1
    assert max(per_incident.values()) <= 3, per_incident
    total = sum(per_incident.values())
    print(
        f"\n1000 changes, 20 incidents: {total} Slack calls "
        f"({total / 20:.2f} per incident, max {max(per_incident.values())}); "
        f"converged {took:.1f}s (test time) after the storm; enqueue outcomes {dict(outcomes)}"
    )


async def test_chat_update_stays_under_forty_a_minute_workspace_wide(rig: Rig) -> None:
    incidents = [await rig.incident(f"i{n}") for n in range(30)]
    async with rig.db.transaction() as s:
        for n, incident in enumerate(incidents):
            await rig.outbox.post_incident_message(s, incident, STORM[n % 4].id, message("v0"))
    await rig.settle()
    # Every incident changes every 2 s for 90 s: 120 updates a minute wanted, 39 allowed.
    for tick in range(1, 46):
        async with rig.db.transaction() as s:
            for incident in incidents:
                await rig.outbox.update_incident_message(s, incident, message(f"v{tick}"))
        await rig.step(2.0)
    await rig.settle()
    times = rig.times(rig.calls("chat.update"))
    window: deque[float] = deque()
    most = 0
    for at in times:
        window.append(at)
        while window[0] <= at - 60:
            window.popleft()
        most = max(most, len(window))
    assert most <= 39
    for incident in incidents:
        stored = await rig.message_of(incident)
        assert stored is not None
        assert rig.slack.message(stored.channel, stored.ts)["text"] == "v45"


@pytest.fixture
async def strict_slack() -> AsyncIterator[SlackEmulator]:
    """Slack's limits enforced in real time, 20 times faster (1 post per 50 ms per channel)."""
    with SlackEmulator(channels=[INCIDENTS], time_scale=20) as running:
        yield running


async def test_real_time_run_loop_stays_inside_slacks_limits(
    rig: Rig, strict_slack: SlackEmulator
) -> None:
    rig.slack = strict_slack
    rig.clock = lambda: datetime.now(UTC)  # type: ignore[assignment]
    rig.outbox = type(rig.outbox)(clock=rig.clock, on_commit=lambda: delivery.wake())
    # Ballast's budgets at 1/15 of real time, against Slack's at 1/20: a little slower.
    await rig.delivery.close()
    delivery = rig.new_delivery(limits=BudgetLimits().scaled(1 / 15), poll_interval=5.0)
    worker = asyncio.create_task(delivery.run())
    try:
        incidents = [await rig.incident(f"i{n}") for n in range(3)]
        started = time.monotonic()
        async with rig.db.transaction() as s:
            await rig.outbox.post_incident_message(s, incidents[0], INCIDENTS.id, message("a"))
        await until(lambda: strict_slack.count("chat.postMessage") > 0)
        woke_in = time.monotonic() - started
        for incident in incidents[1:]:
            await rig.enqueue(
                lambda s, i=incident: rig.outbox.post_incident_message(
                    s, i, INCIDENTS.id, message("a")
                )
            )
        for n in range(12):
            for incident in incidents:
                await rig.enqueue(
                    lambda s, i=incident, n=n: rig.outbox.update_incident_message(
                        s, i, message(f"u{n}")
                    )
                )
                await rig.enqueue(
                    lambda s, i=incident, n=n: rig.outbox.post_thread(s, i, f"t{n}", f"t{n}")
                )
            await asyncio.sleep(0.02)
        for _ in range(400):
            if not await rig.active():
                break
            await asyncio.sleep(0.05)
        assert await rig.active() == 0
    finally:
        await delivery.stop(worker)
    assert woke_in < 0.5, "the enqueue should wake the worker, not the 5 s poll"
    # Real time on a busy machine can bunch two calls' arrivals, so a rare 429 may happen, as
    # on real Slack; what must hold: each was retried, none before its Retry-After, and the
    # pacing kept them rare (unpaced, most of these ~60 posts would be refused).
    assert strict_slack.unretried_rate_limits(match="target") == []
    assert strict_slack.premature_retries() == []
    assert len(strict_slack.rate_limited()) <= 2, strict_slack.rate_limited()
    for message_ in strict_slack.messages(INCIDENTS.id):
        assert message_["text"] == "u11"
        assert [r["text"] for r in message_["replies"]] == [f"t{n}" for n in range(12)]
