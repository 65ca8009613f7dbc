"""A worker killed between claiming a row and recording the answer, then restarted.

The kill is a client that never returns (as a killed process never records anything), before
or after Slack got the request; the restart is a new worker with empty memory. Posts are not
idempotent in Slack, so the restarted worker looks for the message before posting again.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from bot.slack import outbox_rows
from bot.slack.delivery import RECORD_GRACE
from bot.slack.outbox import Enqueued, OutboxState
from tests.slack_delivery.conftest import INCIDENTS, LEASE, Rig, dying, kill, message


async def crash_during(rig: Rig, method: str, *, after_slack: bool) -> None:
    client = dying(rig, method, after_slack=after_slack)
    await rig.restart(client_factory=lambda: client)
    worker = asyncio.create_task(rig.delivery.drain())
    await asyncio.wait_for(client.dead.wait(), 5)
    await kill(worker)
    await rig.restart()


async def posted(rig: Rig, incident: int, text: str = "v1") -> None:
    await rig.enqueue(
        lambda s: rig.outbox.post_incident_message(s, incident, INCIDENTS.id, message(text))
    )


@pytest.mark.parametrize("after_slack", [True, False], ids=["slack-got-it", "slack-did-not"])
async def test_no_duplicate_post_after_a_crash_mid_send(rig: Rig, after_slack: bool) -> None:
    incident = await posted_incident(rig)
    await crash_during(rig, "chat.postMessage", after_slack=after_slack)
    row = await rig.row(f"post:{incident}")
    assert (row.state, row.in_doubt) == (OutboxState.SENDING, True)
    assert (
        await rig.enqueue(
            lambda s: rig.outbox.post_incident_message(s, incident, INCIDENTS.id, message("again"))
        )
        is Enqueued.DUPLICATE
    )

    await rig.step()
    assert (await rig.row(f"post:{incident}")).state == OutboxState.SENDING, (
        "taken over before its lease ran out: the first process might still be sending"
    )
    await rig.step(LEASE.total_seconds() + 1)
    assert len(rig.slack.messages(INCIDENTS.id)) == 1
    expected = ["conversations.history"] + ([] if after_slack else ["chat.postMessage"])
    assert [c.method for c in rig.calls()][-len(expected) :] == expected
    row = await rig.row(f"post:{incident}")
    assert row.state == OutboxState.SENT
    assert row.response is not None
    assert row.response.get("recovered", False) is after_slack
    stored = await rig.message_of(incident)
    assert stored is not None
    assert stored.ts == rig.slack.messages(INCIDENTS.id)[0]["ts"]

    await rig.enqueue(lambda s: rig.outbox.update_incident_message(s, incident, message("v2")))
    await rig.settle()
    assert [m["text"] for m in rig.slack.messages(INCIDENTS.id)] == ["v2"]


async def test_a_new_sender_takes_over_once_the_dead_ones_call_has_ended(rig: Rig) -> None:
    """A restarted (or newly elected) sender does not wait out the whole lease: a claim made
    before it held the sender lease is orphaned once its call could no longer be in flight
    (the call timeout plus the grace for recording), so a crash delays the incident message by
    about that, not the lease."""
    incident = await posted_incident(rig)
    await crash_during(rig, "chat.postMessage", after_slack=False)
    rig.clock.advance(seconds=1)  # the restarted process comes up a moment after the crash
    in_flight = 5.0 + RECORD_GRACE.total_seconds()  # the rig's call_timeout, plus the grace
    assert in_flight + 2 < LEASE.total_seconds(), "the test would prove nothing"

    await rig.step()
    await rig.step(in_flight - 2)
    assert (await rig.row(f"post:{incident}")).state == OutboxState.SENDING, (
        "taken over while the dead sender's call might still be in flight"
    )
    await rig.step(2)
    row = await rig.row(f"post:{incident}")
    assert row.state == OutboxState.SENT
    assert len(rig.slack.messages(INCIDENTS.id)) == 1


async def test_the_sender_takes_over_a_claim_made_while_it_already_held_the_lease(
    rig: Rig,
) -> None:
    """The chaos suite's stall: replica A's lease connection was terminated, B became the
    sender, and A (not yet aware) claimed a row before it died or failed to record it. B held
    the lease before that claim, yet must not wait out the whole lease: the call cannot be in
    flight once call_timeout plus the grace have passed, whoever claimed it."""
    incident = await posted_incident(rig)
    await rig.step()  # this process takes the sender lease and posts
    await rig.enqueue(lambda s: rig.outbox.update_incident_message(s, incident, message("v2")))
    rig.clock.advance(seconds=1)
    async with rig.db.transaction() as session:  # another process claims the update, then goes
        [row] = [r for r in await rig.rows() if r.state == OutboxState.PENDING]
        assert await outbox_rows.claim(session, row, rig.clock(), in_doubt=False)
    in_flight = 5.0 + RECORD_GRACE.total_seconds()  # the rig's call_timeout, plus the grace
    assert in_flight + 2 < LEASE.total_seconds(), "the test would prove nothing"

    await rig.step(in_flight - 1)
    assert [m["text"] for m in rig.slack.messages(INCIDENTS.id)] == ["v1"], (
        "taken over while the other claimant's call might still be in flight"
    )
    await rig.step(2)
    assert [(m["text"], m["edits"]) for m in rig.slack.messages(INCIDENTS.id)] == [("v2", 1)]
    assert await rig.active() == 0


async def test_an_update_made_while_the_post_is_in_doubt_still_lands(rig: Rig) -> None:
    incident = await posted_incident(rig, "v1")
    await crash_during(rig, "chat.postMessage", after_slack=True)
    # Not folded into the post: the post may already be in Slack with v1.
    result = await rig.enqueue(
        lambda s: rig.outbox.update_incident_message(s, incident, message("v2"))
    )
    assert result is Enqueued.QUEUED
    rig.clock.advance(seconds=LEASE.total_seconds() + 1)
    await rig.settle()
    assert [(m["text"], m["edits"]) for m in rig.slack.messages(INCIDENTS.id)] == [("v2", 1)]


async def test_no_duplicate_thread_reply_after_a_crash(rig: Rig) -> None:
    incident = await posted_incident(rig)
    await rig.step()
    for n in range(3):
        await rig.enqueue(lambda s, n=n: rig.outbox.post_thread(s, incident, f"r{n}", f"k{n}"))
    await crash_during(rig, "chat.postMessage", after_slack=True)  # r0 reached Slack
    rig.clock.advance(seconds=LEASE.total_seconds() + 1)
    await rig.settle()
    (shown,) = rig.slack.messages(INCIDENTS.id)
    assert [r["text"] for r in shown["replies"]] == ["r0", "r1", "r2"]
    assert rig.slack.count("conversations.replies") == 1


async def test_an_update_killed_mid_send_is_sent_again_or_superseded(rig: Rig) -> None:
    incident = await posted_incident(rig)
    await rig.step()
    await rig.enqueue(lambda s: rig.outbox.update_incident_message(s, incident, message("v2")))
    await crash_during(rig, "chat.update", after_slack=False)
    await rig.enqueue(lambda s: rig.outbox.update_incident_message(s, incident, message("v3")))
    rig.clock.advance(seconds=LEASE.total_seconds() + 1)
    await rig.settle()
    updates = [(r.payload["text"], r.state) for r in await rig.rows() if r.method == "chat.update"]
    assert updates == [("v2", OutboxState.SUPERSEDED), ("v3", OutboxState.SENT)]
    assert [m["text"] for m in rig.slack.messages(INCIDENTS.id)] == ["v3"]


async def test_without_history_access_a_post_in_doubt_is_posted_again(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    """The documented fallback: a duplicate beats a missing incident message."""
    await posted_incident(rig)
    await crash_during(rig, "chat.postMessage", after_slack=True)
    rig.slack.fail_next("conversations.history", "missing_scope")
    rig.clock.advance(seconds=LEASE.total_seconds() + 1)
    with caplog.at_level(logging.WARNING, logger="bot.slack.delivery"):
        await rig.settle()
    assert "cannot check whether outbox #" in caplog.text
    assert "(missing_scope); sending it again, which may duplicate it" in caplog.text
    assert len(rig.slack.messages(INCIDENTS.id)) == 2


async def posted_incident(rig: Rig, text: str = "v1") -> int:
    incident = await rig.incident()
    await posted(rig, incident, text)
    return incident
