"""The Slack announcer renders in the background, one change at a time: whoever publishes (the
engine, after each batch) does not wait for the message's reads and writes. Each incident's
changes are rendered in order, a queued render subsumes a later counts-only change, incidents
take turns, one failing render does not stop the others, and at shutdown nothing queued is
left behind."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, cast

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from bot import telemetry
from bot.config import SlackConfig
from bot.incidents.changes import ChangeKind, IncidentChange
from bot.slack.announcer import SlackAnnouncer
from tests.slack.test_update_window import change
from tests.telemetry.test_spans import spans  # noqa: F401 (fixture)


class RecordingAnnouncer(SlackAnnouncer):
    """The queue as it is, with the render replaced by a record of what would be rendered
    (the renders themselves: tests/slack_scenarios)."""

    def __init__(self, update_every: float = 0) -> None:
        """``update_every`` 0: no window in front, every change reaches the queue."""
        unused = cast(Any, None)
        super().__init__(
            unused,
            unused,
            unused,
            unused,
            SlackConfig(),
            fallback_channel=None,
            update_every=update_every,
        )
        self.rendered: list[IncidentChange] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.failing: set[int] = set()

    async def _announce(self, change: IncidentChange) -> None:
        await self.gate.wait()  # a render's reads and writes take a while
        if change.incident_id in self.failing:
            raise RuntimeError("the database went away")
        self.rendered.append(change)


async def test_the_publisher_does_not_wait_for_the_render() -> None:
    announcer = RecordingAnnouncer()
    announcer.gate.clear()
    opened = change(1, ChangeKind.OPENED)
    await asyncio.wait_for(announcer.incidents_changed([opened]), timeout=5)
    assert announcer.rendered == []  # queued, the render still waiting
    announcer.gate.set()
    await announcer.flush()
    assert announcer.rendered == [opened]


async def test_an_incidents_changes_in_order_and_counts_subsumed_by_a_queued_render() -> None:
    announcer = RecordingAnnouncer()
    announcer.gate.clear()
    opened = change(1, ChangeKind.OPENED)
    applied = change(1, ChangeKind.UPDATED, note="disable_tool applied")
    await announcer.incidents_changed([opened])
    await asyncio.sleep(0)  # the render of the opening is under way
    await announcer.incidents_changed([applied])
    # More alerts while a render is queued: that render will show them.
    await announcer.incidents_changed([change(1, ChangeKind.UPDATED)])
    await announcer.incidents_changed([change(1)])
    acked = change(1, ChangeKind.STATUS, note="Acknowledged")
    await announcer.incidents_changed([acked])
    announcer.gate.set()
    await announcer.flush()
    assert announcer.rendered == [opened, applied, acked]


async def test_a_counts_only_change_queued_alone_is_replaced_by_the_next_change() -> None:
    announcer = RecordingAnnouncer()
    announcer.gate.clear()
    await announcer.incidents_changed([change(1, ChangeKind.OPENED), change(2, ChangeKind.OPENED)])
    await asyncio.sleep(0)  # incident 1's opening is being rendered; 2's waits
    # Incident 1: a counts-only change after a render under way is queued (that render may
    # have read the counts before them); the next change replaces it, showing them too.
    await announcer.incidents_changed([change(1, ChangeKind.UPDATED)])
    resolved = change(1, ChangeKind.RESOLVED, note="Resolved")
    await announcer.incidents_changed([resolved])
    announcer.gate.set()
    await announcer.flush()
    assert [(c.incident_id, c.kinds) for c in announcer.rendered] == [
        (1, {ChangeKind.OPENED}),
        (2, {ChangeKind.OPENED}),
        (1, {ChangeKind.RESOLVED}),
    ]


async def test_incidents_take_turns() -> None:
    announcer = RecordingAnnouncer()
    announcer.gate.clear()
    busy = [change(1, ChangeKind.UPDATED, note=f"note {n}") for n in range(3)]
    await announcer.incidents_changed(busy)
    other = change(2, ChangeKind.STATUS, note="Acknowledged")
    await announcer.incidents_changed([other])
    announcer.gate.set()
    await announcer.flush()
    assert announcer.rendered == [busy[0], other, busy[1], busy[2]]


async def test_a_failing_render_is_logged_and_the_others_go_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    announcer = RecordingAnnouncer()
    announcer.failing = {1}
    fine = change(2, ChangeKind.OPENED)
    with caplog.at_level(logging.ERROR, logger="bot.slack.announcer"):
        await announcer.incidents_changed([change(1, ChangeKind.OPENED), fine])
        await announcer.flush()
    assert announcer.rendered == [fine]
    assert "could not announce a change of incident #1" in caplog.text


async def test_drain_renders_what_is_queued_and_then_each_change_as_it_comes() -> None:
    announcer = RecordingAnnouncer(update_every=60)
    await announcer.incidents_changed([change(1, ChangeKind.OPENED)])
    await announcer.incidents_changed([held := change(1, ChangeKind.UPDATED)])  # its window
    announcer.gate.clear()
    queued = change(2, ChangeKind.OPENED)
    await announcer.incidents_changed([queued])
    draining = asyncio.create_task(announcer.drain())
    await asyncio.sleep(0.05)
    assert not draining.done()  # waits for the renders under way
    announcer.gate.set()
    await draining
    assert announcer.rendered[1:] == [queued, held] or announcer.rendered[1:] == [held, queued]
    # Shutting down: a change after the drain is rendered before its publisher goes on.
    later = change(3, ChangeKind.OPENED)
    await announcer.incidents_changed([later])
    assert announcer.rendered[-1] is later


async def test_drain_gives_up_after_its_grace_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """SIGTERM's grace bounds the shutdown: renders still queued then are dropped, logged."""
    announcer = RecordingAnnouncer()
    announcer.gate.clear()  # the database no longer answers
    await announcer.incidents_changed([change(n, ChangeKind.OPENED) for n in (1, 2, 3)])
    with caplog.at_level(logging.WARNING, logger="bot.slack.announcer"):
        await asyncio.wait_for(announcer.drain(grace=0.2), timeout=5)
    assert "3 incident change(s) not rendered for Slack within 0.2 s" in caplog.text
    assert announcer.rendered == []
    announcer.gate.set()
    await announcer.incidents_changed([later := change(4, ChangeKind.OPENED)])
    assert announcer.rendered == [later]  # rendered as it comes after the drain


async def test_a_render_continues_its_changes_trace_or_its_publishers(
    spans: InMemorySpanExporter,  # noqa: F811 (the fixture)
) -> None:
    announcer = RecordingAnnouncer()
    with telemetry.span("engine.batch") as batch:
        engine_change = change(1, ChangeKind.OPENED)
        engine_change.traceparent = telemetry.traceparent()
        await announcer.incidents_changed([engine_change])  # the worker starts in this span
        with telemetry.span("mitigation.auto") as auto:
            await announcer.incidents_changed([change(1, ChangeKind.UPDATED, note="applied")])
    await announcer.incidents_changed([change(2, ChangeKind.OPENED)])  # outside any span
    await announcer.flush()
    announced = [s for s in spans.get_finished_spans() if s.name == "slack.announce"]
    parents = [s.parent.span_id if s.parent else None for s in announced]
    assert parents == [  # incidents take turns: 1's opening, 2's, then 1's note
        batch.get_span_context().span_id,
        None,  # not the span that happened to be current when the worker started
        auto.get_span_context().span_id,
    ]
