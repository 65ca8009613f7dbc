"""Races that once left an incident message showing an older state than the incident's."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest

from bot.slack import outbox_rows as outbox_store
from bot.slack.outbox import Enqueued
from tests.slack_delivery.conftest import INCIDENTS, Rig, hooked, message


async def shown(rig: Rig, incident: int) -> str:
    stored = await rig.message_of(incident)
    assert stored is not None
    return str(rig.slack.message(INCIDENTS.id, stored.ts)["text"])


async def test_a_rate_limited_post_never_overtakes_a_waiting_update(rig: Rig) -> None:
    """An update queued while the post is in flight must stay the last word, even when the
    post comes back for a retry (it must not collect the newer states itself)."""
    incident = await rig.incident()

    async def update_arrives_mid_post() -> None:
        await rig.enqueue(lambda s: rig.outbox.update_incident_message(s, incident, message("v2")))

    await rig.restart(client_factory=hooked(rig, "chat.postMessage", update_arrives_mid_post))
    rig.slack.fail_next("chat.postMessage", "ratelimited", status=429, retry_after=2)
    await rig.enqueue(
        lambda s: rig.outbox.post_incident_message(s, incident, INCIDENTS.id, message("v1"))
    )
    await rig.step()
    later = await rig.enqueue(
        lambda s: rig.outbox.update_incident_message(s, incident, message("v3"))
    )
    assert later is Enqueued.COALESCED, "into the waiting update, not folded into the post"
    await rig.settle()
    assert await shown(rig, incident) == "v3"


async def test_an_update_coalesced_between_the_workers_read_and_claim_is_not_lost(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    incident = await rig.incident()
    await rig.enqueue(
        lambda s: rig.outbox.post_incident_message(s, incident, INCIDENTS.id, message("v0"))
    )
    await rig.step()
    await rig.enqueue(lambda s: rig.outbox.update_incident_message(s, incident, message("v1")))
    await rig.step()  # v1 sent: the next update waits 15 s
    await rig.enqueue(lambda s: rig.outbox.update_incident_message(s, incident, message("v2")))
    await rig.step()  # v2 deferred to its due time

    real_due_heads = outbox_store.due_heads
    racing: list[asyncio.Task[Any]] = []

    async def due_heads_then_a_new_state(*args: Any) -> Any:
        heads = await real_due_heads(*args)
        if heads and not racing:
            racing.append(
                asyncio.create_task(
                    rig.enqueue(
                        lambda s: rig.outbox.update_incident_message(s, incident, message("v3"))
                    )
                )
            )
            # SQLite: it commits now, between the read and the claim. PostgreSQL: it waits
            # for the row lock the read took, and lands after the claim.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(racing[0]), 0.3)
        return heads

    monkeypatch.setattr(outbox_store, "due_heads", due_heads_then_a_new_state)
    await rig.step(15)
    await racing[0]
    await rig.settle()
    assert await shown(rig, incident) == "v3"
