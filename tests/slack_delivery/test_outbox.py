"""Enqueueing: idempotency keys, folding and coalescing, the transactional wake-up."""

from __future__ import annotations

import pytest
from slack_sdk.models.blocks import SectionBlock
from sqlalchemy import update

from bot.slack.outbox import Enqueued, OutboxState
from bot.store.tables import SlackOutboxEntry
from tests.slack_delivery.conftest import INCIDENTS, Rig, message


async def test_posting_an_incident_twice_enqueues_one_message(rig: Rig) -> None:
    incident = await rig.incident()

    def post(text: str) -> object:
        return lambda s: rig.outbox.post_incident_message(s, incident, INCIDENTS.id, message(text))

    assert await rig.enqueue(post("first")) is Enqueued.QUEUED
    assert await rig.enqueue(post("again, e.g. after a restart")) is Enqueued.DUPLICATE
    await rig.step()
    assert await rig.enqueue(post("once it is posted")) is Enqueued.DUPLICATE
    await rig.settle()
    assert [r.idempotency_key for r in await rig.rows()] == [f"post:{incident}"]
    assert rig.slack.count("chat.postMessage") == 1


async def test_an_update_before_the_post_is_sent_is_folded_into_the_post(rig: Rig) -> None:
    incident = await rig.incident()
    await rig.enqueue(
        lambda s: rig.outbox.post_incident_message(s, incident, INCIDENTS.id, message("v1"))
    )
    for version in ("v2", "v3"):
        folded = await rig.enqueue(
            lambda s, v=version: rig.outbox.update_incident_message(s, incident, message(v))
        )
        assert folded is Enqueued.FOLDED
    await rig.settle()
    assert len(await rig.rows()) == 1
    assert [c.args["text"] for c in rig.calls("chat.postMessage")] == ["v3"]
    assert rig.slack.count("chat.update") == 0


async def test_pending_updates_of_one_incident_coalesce_into_one_row(rig: Rig) -> None:
    incident = await rig.incident()
    await rig.enqueue(
        lambda s: rig.outbox.post_incident_message(s, incident, INCIDENTS.id, message("v0"))
    )
    await rig.step()
    results = [
        await rig.enqueue(
            lambda s, n=n: rig.outbox.update_incident_message(s, incident, message(f"v{n}"))
        )
        for n in range(1, 6)
    ]
    assert results == [Enqueued.QUEUED] + [Enqueued.COALESCED] * 4
    pending = [r for r in await rig.rows() if r.state == OutboxState.PENDING]
    assert [(r.method, r.payload["text"]) for r in pending] == [("chat.update", "v5")]


async def test_updates_and_replies_need_a_message(rig: Rig) -> None:
    incident = await rig.incident()
    update_ = await rig.enqueue(
        lambda s: rig.outbox.update_incident_message(s, incident, message("x"))
    )
    reply = await rig.enqueue(lambda s: rig.outbox.post_thread(s, incident, "x", "k"))
    assert (update_, reply) == (Enqueued.NO_MESSAGE, Enqueued.NO_MESSAGE)
    assert await rig.rows() == []


async def test_a_rolled_back_change_enqueues_nothing_and_wakes_no_one(rig: Rig) -> None:
    incident = await rig.incident()

    async def failing_change() -> None:
        async with rig.db.transaction() as session:
            await rig.outbox.post_incident_message(session, incident, INCIDENTS.id, message("x"))
            raise RuntimeError("the incident change failed")

    with pytest.raises(RuntimeError, match="the incident change failed"):
        await failing_change()
    assert await rig.rows() == []
    assert rig.woken == 0
    async with rig.db.transaction() as session:
        await rig.outbox.post_incident_message(session, incident, INCIDENTS.id, message("x"))
        await rig.outbox.notify(session, "U0ONCALL01", message("you are paged"), "page:1")
        assert rig.woken == 0, "woken before the commit: the worker would find nothing"
    assert rig.woken == 1


async def test_a_failed_key_is_queued_again_with_the_new_payload(rig: Rig) -> None:
    async def notify(text: str) -> Enqueued:
        return await rig.enqueue(
            lambda s: rig.outbox.notify(s, INCIDENTS.id, message(text), "reminder:7")
        )

    assert await notify("first") is Enqueued.QUEUED
    async with rig.db.transaction() as session:
        await session.execute(
            update(SlackOutboxEntry).values(state=OutboxState.FAILED, error="channel_not_found")
        )
    assert await notify("second") is Enqueued.QUEUED
    row = await rig.row("notify:reminder:7")
    assert (row.state, row.payload["text"], row.error) == (OutboxState.PENDING, "second", None)


async def test_message_bodies_are_checked_and_made_json(rig: Rig) -> None:
    incident = await rig.incident()
    with pytest.raises(ValueError, match=r"\['channel'\]; the outbox sets these itself"):
        await rig.enqueue(
            lambda s: rig.outbox.post_incident_message(
                s, incident, INCIDENTS.id, {"text": "x", "channel": "C1"}
            )
        )
    with pytest.raises(ValueError, match="needs `text` or `blocks`"):
        await rig.enqueue(lambda s: rig.outbox.notify(s, INCIDENTS.id, {"blocks": []}, "k"))
    blocks = [SectionBlock(block_id="b1", text="*Groundedness* low")]
    await rig.enqueue(
        lambda s: rig.outbox.post_incident_message(
            s, incident, INCIDENTS.id, {"text": "x", "blocks": blocks}
        )
    )
    (row,) = await rig.rows()
    assert row.payload["blocks"] == [
        {
            "type": "section",
            "block_id": "b1",
            "text": {"type": "mrkdwn", "text": "*Groundedness* low"},
        }
    ]
