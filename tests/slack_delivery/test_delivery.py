"""The worker against the Slack emulator: where messages go, pacing, 429s, errors."""

from __future__ import annotations

import logging
from datetime import timedelta
from itertools import pairwise

import pytest

from bot.slack.delivery_claims import NEVER_POSTED
from bot.slack.outbox import Enqueued, OutboxState
from tests.slack_delivery.conftest import INCIDENTS, OTHER, Rig, hooked, message


async def post(rig: Rig, incident: int, text: str = "v1", channel: str = INCIDENTS.id) -> None:
    await rig.enqueue(
        lambda s: rig.outbox.post_incident_message(s, incident, channel, message(text))
    )


async def test_updates_and_replies_find_the_message_after_a_restart(rig: Rig) -> None:
    incident = await rig.incident()
    await post(rig, incident, channel="#incidents")  # a name: Slack answers with the id
    await rig.step()
    stored = await rig.message_of(incident)
    assert stored is not None
    assert (stored.channel, stored.ts, stored.thread_ts) == (INCIDENTS.id, stored.ts, stored.ts)
    await rig.restart()
    await rig.enqueue(lambda s: rig.outbox.update_incident_message(s, incident, message("v2")))
    await rig.enqueue(lambda s: rig.outbox.post_thread(s, incident, "Ran disable_tool", "e1"))
    await rig.settle()
    shown = rig.slack.messages(INCIDENTS.id)
    assert [(m["text"], m["edits"], [r["text"] for r in m["replies"]]) for m in shown] == [
        ("v2", 1, ["Ran disable_tool"])
    ]
    (post_call,) = rig.calls("chat.postMessage", INCIDENTS.id)[:1]
    metadata = post_call.args["metadata"]
    assert metadata == {
        "event_type": "ballast_outbox",
        "event_payload": {"key": f"post:{incident}"},
    }


async def test_one_post_a_second_per_channel_and_replies_in_order(rig: Rig) -> None:
    first, second, elsewhere = [await rig.incident(f"i{n}") for n in range(3)]
    await post(rig, first)
    await rig.step()
    for n in range(10):
        await rig.enqueue(lambda s, n=n: rig.outbox.post_thread(s, first, f"reply {n}", f"r{n}"))
    await post(rig, second)
    await post(rig, elsewhere, channel=OTHER.id)
    took = await rig.settle(step=0.1)
    calls = rig.calls("chat.postMessage", INCIDENTS.id)
    times = rig.times(calls)
    assert len(calls) == 12
    # A bucket of 3 refilling at 1/s: calls i..j need at least (j - i + 1) - 3 seconds.
    for i in range(len(times)):
        for j in range(i + 1, len(times)):
            assert times[j] - times[i] >= (j - i + 1) - 3 - 1e-6, (i, j, times)
    assert 8.0 <= took <= 9.5
    replies = [c.args["text"] for c in calls if "thread_ts" in c.args]
    assert replies == [f"reply {n}" for n in range(10)]
    other = rig.calls("chat.postMessage", OTHER.id)
    assert rig.stamps[other[0].seq] - rig.stamps[calls[1].seq] < timedelta(seconds=1), (
        "a busy channel must not hold up another"
    )


async def test_a_429_is_honoured_for_its_retry_after_then_the_call_succeeds(rig: Rig) -> None:
    rig.slack.fail_next("chat.postMessage", "ratelimited", status=429, retry_after=7)
    one, two = await rig.incident("one"), await rig.incident("two")
    await post(rig, one)
    await rig.step()
    row = await rig.row(f"post:{one}")
    assert (row.state, row.error) == (OutboxState.PENDING, "ratelimited; Retry-After 7s")
    assert row.not_before == rig.clock() + timedelta(seconds=7)
    await post(rig, two)  # same channel: paused with it, though its row never saw a 429
    for _ in range(16):
        await rig.step(0.5)
    calls = rig.calls("chat.postMessage")
    assert list(zip([c.status for c in calls], rig.times(calls), strict=True)) == [
        (429, 0.0),
        (200, 7.0),  # exactly when Slack said
        (200, 8.0),  # then one call to test the water, not a burst
    ]
    assert calls[1].args["text"] == calls[0].args["text"]
    assert rig.slack.unretried_rate_limits() == []
    assert {r.state for r in await rig.rows()} == {OutboxState.SENT}


async def test_a_permanent_error_fails_the_row_with_one_clear_log_line(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    incident = await rig.incident()
    await post(rig, incident, channel="C0NOSUCH01")
    await rig.enqueue(lambda s: rig.outbox.post_thread(s, incident, "detail", "d1"))
    with caplog.at_level(logging.INFO, logger="bot.slack.delivery"):
        await rig.settle()
    row = await rig.row(f"post:{incident}")
    assert (row.state, row.error, row.attempts) == (OutboxState.FAILED, "channel_not_found", 1)
    reply = await rig.row(f"thread:{incident}:d1")
    assert (reply.state, reply.error) == (OutboxState.FAILED, NEVER_POSTED)
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert lines == [
        f"Slack chat.postMessage to C0NOSUCH01 failed: channel_not_found; not retried "
        f"(outbox #{row.id}, post:{incident}); fix: check the channel id in ballast.yaml / "
        "BALLAST_SLACK_CHANNEL"
    ]
    later = await rig.enqueue(
        lambda s: rig.outbox.update_incident_message(s, incident, message("x"))
    )
    assert later is Enqueued.NO_MESSAGE


async def test_blocks_slack_rejects_fail_with_slacks_explanation(rig: Rig) -> None:
    incident = await rig.incident()
    too_long = {"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}
    await rig.enqueue(
        lambda s: rig.outbox.post_incident_message(
            s, incident, INCIDENTS.id, {"text": "x", "blocks": [too_long]}
        )
    )
    await rig.settle()
    row = await rig.row(f"post:{incident}")
    assert row.state == OutboxState.FAILED
    assert str(row.error).startswith("invalid_blocks ([ERROR]")


async def test_a_slack_internal_error_is_retried_and_checked_before_posting_again(
    rig: Rig,
) -> None:
    rig.slack.fail_next("chat.postMessage", "internal_error")
    incident = await rig.incident()
    await post(rig, incident)
    await rig.step()
    row = await rig.row(f"post:{incident}")
    assert (row.state, row.in_doubt, row.error) == (OutboxState.PENDING, True, "internal_error")
    await rig.settle()
    # internal_error "may have partly happened": look before posting again.
    assert [c.method for c in rig.calls()] == [
        "chat.postMessage",
        "conversations.history",
        "chat.postMessage",
    ]
    assert len(rig.slack.messages(INCIDENTS.id)) == 1


async def test_a_5xx_on_update_is_retried_and_the_message_converges(rig: Rig) -> None:
    incident = await rig.incident()
    await post(rig, incident)
    await rig.step()
    rig.slack.fail_next("chat.update", "service_unavailable", status=503, times=2)
    await rig.enqueue(lambda s: rig.outbox.update_incident_message(s, incident, message("v2")))
    await rig.step()
    coalesced = await rig.enqueue(
        lambda s: rig.outbox.update_incident_message(s, incident, message("v3"))
    )
    assert coalesced is Enqueued.COALESCED, "the retry carries the newest state"
    await rig.settle()
    stored = await rig.message_of(incident)
    assert stored is not None
    assert rig.slack.message(INCIDENTS.id, stored.ts)["text"] == "v3"
    assert [(c.status, c.args["text"]) for c in rig.calls("chat.update")] == [
        (503, "v2"),
        (503, "v3"),
        (200, "v3"),
    ]


async def test_an_update_replaced_while_in_flight_is_superseded_not_retried(rig: Rig) -> None:
    incident = await rig.incident()
    await post(rig, incident)
    await rig.step()

    async def newer_update_arrives() -> None:
        await rig.enqueue(lambda s: rig.outbox.update_incident_message(s, incident, message("v3")))

    await rig.restart(client_factory=hooked(rig, "chat.update", newer_update_arrives))
    rig.slack.fail_next("chat.update", "service_unavailable", status=503)
    await rig.enqueue(lambda s: rig.outbox.update_incident_message(s, incident, message("v2")))
    await rig.settle(step=1)
    updates = [(r.payload["text"], r.state) for r in await rig.rows() if r.method == "chat.update"]
    assert updates == [("v2", OutboxState.SUPERSEDED), ("v3", OutboxState.SENT)]
    assert [c.args["text"] for c in rig.calls("chat.update")] == ["v2", "v3"]


async def test_a_revoked_token_keeps_messages_until_it_is_fixed(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    rig.slack.fail_next("chat.postMessage", "token_revoked", times=2)
    incident = await rig.incident()
    await post(rig, incident)
    with caplog.at_level(logging.ERROR, logger="bot.slack.delivery"):
        await rig.step()
    row = await rig.row(f"post:{incident}")
    assert (row.state, row.not_before) == (OutboxState.PENDING, rig.clock() + timedelta(minutes=5))
    assert "failed (token_revoked); retrying in 300s" in caplog.text
    await rig.settle(step=30)
    assert (await rig.row(f"post:{incident}")).state == OutboxState.SENT


async def test_unreachable_slack_is_retried_with_backoff_then_given_up(rig: Rig) -> None:
    from bot.settings import Settings
    from bot.slack.delivery import slack_client_factory

    nowhere = slack_client_factory(
        Settings(slack_bot_token="xoxb-x", slack_api_url="http://127.0.0.1:9/api"), timeout=2
    )
    await rig.restart(client_factory=nowhere, give_up_after=timedelta(minutes=1))
    incident = await rig.incident()
    await post(rig, incident)
    waits = []
    while (row := await rig.row(f"post:{incident}")).state == OutboxState.PENDING:
        waits.append((row.not_before - rig.clock()).total_seconds())
        await rig.step(max(waits[-1], 0.0))
    assert row.state == OutboxState.FAILED
    assert str(row.error).startswith("gave up after")
    assert "ClientConnectorError" in str(row.error)
    assert waits[0] == 0
    # Doubling, with +-20% jitter.
    assert all(2 * 0.8 / 1.2 <= b / a <= 2 * 1.2 / 0.8 for a, b in pairwise(waits[1:]))


async def test_rate_limits_do_not_stretch_the_backoff_of_a_later_failure(rig: Rig) -> None:
    """A row that met six 429s (each honoured for its Retry-After) and then a 500 waits the
    first step of the backoff, about a second: the exponent counts transient failures, not
    attempts (the chaos suite once left an update four minutes out at its ninth attempt)."""
    incident = await rig.incident()
    rig.slack.fail_next("chat.postMessage", "ratelimited", status=429, retry_after=1, times=6)
    rig.slack.fail_next("chat.postMessage", "internal_error", status=500, times=2)
    await post(rig, incident)
    waits: dict[int, float] = {}  # attempts so far -> the wait they left
    for _ in range(60):
        row = await rig.row(f"post:{incident}")
        if row.state != OutboxState.PENDING:
            break
        wait = (row.not_before - rig.clock()).total_seconds()
        waits.setdefault(row.attempts, wait)
        # A lookup's or a post's budget may hold a due row back a moment.
        await rig.step(max(wait, 0.25))
    assert row.state == OutboxState.SENT
    assert (row.attempts, row.failures) == (9, 2)
    # Six Retry-Afters of a second, then 1 s and 2 s of backoff, +-20%.
    assert [waits[n] for n in range(7)] == [0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    assert 0.8 <= waits[7] <= 1.2, waits
    assert 1.6 <= waits[8] <= 2.4, waits


async def test_an_unchanged_update_costs_no_call(rig: Rig) -> None:
    incident = await rig.incident()
    await post(rig, incident, "same")
    await rig.step()
    await rig.enqueue(lambda s: rig.outbox.update_incident_message(s, incident, message("same")))
    await rig.settle()
    assert rig.slack.count("chat.update") == 0
    updates = [r for r in await rig.rows() if r.method == "chat.update"]
    assert [(r.state, r.response) for r in updates] == [
        (OutboxState.SENT, {"skipped": "unchanged"})
    ]


async def test_notifications_and_other_calls(rig: Rig) -> None:
    async with rig.db.transaction() as s:
        await rig.outbox.notify(s, OTHER.id, message("Escalating #7"), "escalate:7:1")
        await rig.outbox.call(
            s, "conversations.create", {"name": "inc-7-groundedness"}, "channel:7"
        )
    await rig.settle()
    assert rig.slack.messages(OTHER.id)[0]["text"] == "Escalating #7"
    created = await rig.row("call:channel:7")
    assert created.response is not None
    assert created.response["channel"]["name"] == "inc-7-groundedness"


async def test_a_delivery_continues_the_span_that_queued_it(rig: Rig) -> None:
    """With tracing on, the outbox row keeps the queuing span's traceparent and the call is a
    CLIENT span under it, whichever process sends it; a failed call is an error span."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanKind, StatusCode

    from bot import telemetry

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    telemetry.set_tracer(provider.get_tracer("ballast"))
    try:
        incident = await rig.incident()
        with telemetry.span("queued") as queued:
            await post(rig, incident)
        [row] = await rig.rows()
        context = queued.get_span_context()
        assert row.traceparent is not None
        assert row.traceparent.startswith(f"00-{context.trace_id:032x}-{context.span_id:016x}-")
        rig.slack.fail_next("chat.postMessage", "channel_not_found")
        await rig.step()
        [call] = [s for s in exporter.get_finished_spans() if s.name.startswith("slack.deliver")]
        assert call.name == "slack.deliver chat.postMessage"
        assert call.kind is SpanKind.CLIENT
        assert call.parent is not None
        assert (call.context.trace_id, call.parent.span_id) == (context.trace_id, context.span_id)
        assert call.attributes is not None
        assert call.attributes["ballast.incident.id"] == incident
        assert call.attributes["ballast.slack.verdict"] == "failed"
        assert call.status.status_code is StatusCode.ERROR
    finally:
        telemetry.set_tracer(None)
        provider.shutdown()
