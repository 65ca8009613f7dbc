"""Keeps each incident's Slack message in step with the incident, through the outbox.

One message per incident, posted when it opens and updated in place on every change; the
details of a change go to the message's thread. Everything is enqueued in one transaction, so
a restart neither loses nor doubles a message.

Changes are rendered in the background, one at a time, in order for each incident: whoever
publishes a change (the engine after each batch) does not wait for the message's reads and
writes. An incident whose only news is more alerts is rendered at most once per window
(:mod:`bot.slack.update_window`), and a queued render subsumes a later counts-only change; the
outbox then coalesces the updates still pending for one message. Under a storm this is what
keeps the engine at the speed of the intake with Slack configured (issue 16).

What is queued is in memory until it is rendered, so each render also records the state it
was made from (:mod:`bot.slack.render_marks`). A catch-up at start and every minute renders
the incidents with a change no render showed: one lost in a crash, or whose render failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hashlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from actions.registry import ActionRegistry
from bot import telemetry
from bot.changelog.ranking import DEFAULT_WINDOW
from bot.config import SlackConfig
from bot.errors import NotFoundError
from bot.incidents.changes import ChangeKind, IncidentChange
from bot.incidents.detail import SUMMARY_TIMELINE_KINDS, Planner, load_incident_detail
from bot.incidents.traces import TraceLinks
from bot.runbooks.catalog import LiveCatalog
from bot.runtime.worker import WorkerLoop
from bot.slack import render_marks
from bot.slack.incident_message import render_incident
from bot.slack.outbox import Enqueued, SlackOutbox
from bot.slack.text import note_text
from bot.slack.update_window import UPDATE_EVERY_SECONDS, UpdateWindow, counts_only
from bot.slack.view import MESSAGE_ALERT_SAMPLE, build_view
from bot.store import incidents as repo
from bot.store.database import Database
from bot.telemetry import names

log = logging.getLogger(__name__)

CATCH_UP_EVERY_SECONDS = 60.0
# A resolved incident's message is brought up to date for this long after its last change.
CATCH_UP_RESOLVED = timedelta(hours=24)
CATCH_UP_BATCH = 200  # incidents queued per catch-up pass (the rest at the next)


class SlackAnnouncer:
    def __init__(
        self,
        db: Database,
        catalog: LiveCatalog,
        registry: ActionRegistry,
        outbox: SlackOutbox,
        config: SlackConfig,
        *,
        fallback_channel: str | None,
        on_enqueued: Callable[[], None] | None = None,
        change_window: timedelta = DEFAULT_WINDOW,
        traces: TraceLinks | None = None,
        clock: Callable[[], datetime] | None = None,
        planner: Planner | None = None,
        update_every: float = UPDATE_EVERY_SECONDS,
    ) -> None:
        self._planner = planner
        self._traces = traces
        self._clock = clock
        self._db = db
        self._change_window = change_window
        self._catalog = catalog
        self._registry = registry
        self._outbox = outbox
        self._config = config
        self._fallback = fallback_channel
        self._on_enqueued = on_enqueued
        self._window = UpdateWindow(self._queue_all, every=update_every, name="slack-updates")
        # Incident id -> its changes waiting to be rendered, in order; incidents in the order
        # they are due (round robin). Rendered one at a time by ``_work``, so the last message
        # enqueued for an incident is rendered from the last state read.
        self._queued: dict[int, list[tuple[IncidentChange, str | None]]] = {}
        self._worker: asyncio.Task[None] | None = None
        self._rendering: int | None = None  # the incident whose change is being rendered
        # The catch-up walks the incidents behind a page at a time, from the id after the last
        # page's (0: from the start), so incidents it cannot render (no channel, a render that
        # keeps failing) never hold the others back.
        self._catch_up_after = 0
        self._no_channel: set[int] = set()  # incidents whose missing channel was logged
        self._drained = False
        self.catch_up = WorkerLoop(
            self._catch_up_pass,
            poll_interval=CATCH_UP_EVERY_SECONDS,
            log=log,
            failure="could not look for incidents whose Slack message is behind",
        )

    async def incidents_changed(self, changes: list[IncidentChange]) -> None:
        """Take the changes and return: the engine (which awaits its listeners after each
        batch) does not wait for the rendering, nor for the database round trips behind it.
        """
        await self._window.incidents_changed(changes)

    async def flush(self) -> None:
        """Render and enqueue what is held back and queued now; return once it is enqueued."""
        await self._window.flush()
        await self._worked_off()

    async def drain(self, grace: float | None = None) -> None:
        """At shutdown, before the outbox stops: enqueue everything held back and queued now
        (within ``grace`` seconds; what is left then is dropped, and logged), and each change
        after this as it comes."""
        await self._window.drain()
        try:
            async with asyncio.timeout(grace):
                await self._worked_off()
        except TimeoutError:
            left = sum(len(queued) for queued in self._queued.values())
            log.warning(
                "shutting down: %d incident change(s) not rendered for Slack within %s s",
                left + 1,  # and the one under way
                grace,
            )
            self._queued.clear()
            if self._worker is not None:
                self._worker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._worker
        self._drained = True

    async def _catch_up_pass(self) -> float | None:
        """A page; the next one at once while the renders queued stay under a page (else in
        a second), and from the start again in a minute once the last page was read."""
        behind, _ = await self.catch_up_once()
        if behind < CATCH_UP_BATCH:
            return None
        return 0 if len(self._queued) < CATCH_UP_BATCH else 1.0

    async def catch_up_once(self) -> tuple[int, int]:
        """Queue a render of each incident with a change no render showed (see the module
        docstring), but those whose render is queued or under way here. Returns how many
        were behind, and how many of them it queued."""
        now = self._now()
        async with self._db.reads() as session:
            behind = await render_marks.behind(
                session,
                resolved_since=now - CATCH_UP_RESOLVED,
                after=self._catch_up_after,
                limit=CATCH_UP_BATCH,
            )
        self._catch_up_after = behind[-1] if len(behind) == CATCH_UP_BATCH else 0
        waiting = [
            incident_id
            for incident_id in behind
            if incident_id not in self._queued and incident_id != self._rendering
        ]
        if waiting:
            log.info(
                "%d incident(s) with a change their Slack message does not show yet: "
                "rendering them (first: #%d)",
                len(waiting),
                waiting[0],
            )
            # Counts-only changes: held by the window like any other, subsumed by a render
            # already queued.
            await self._window.incidents_changed(
                [IncidentChange(incident_id, {ChangeKind.UPDATED}) for incident_id in waiting]
            )
        return len(behind), len(waiting)

    def _now(self) -> datetime:
        return self._clock() if self._clock else datetime.now(UTC)

    async def _queue_all(self, changes: list[IncidentChange]) -> None:
        for change in changes:
            # The span the render continues: the change's, else the publisher's (the render
            # runs in a task of its own, whose current span is whatever started it).
            entry = (change, change.traceparent or telemetry.traceparent())
            queued = self._queued.setdefault(change.incident_id, [])
            if counts_only(change):
                if not queued:  # otherwise a render still to come shows the counts too
                    queued.append(entry)
            elif queued and counts_only(queued[-1][0]):
                queued[-1] = entry  # this render shows the counts too
            else:
                queued.append(entry)
        if self._drained:
            await self._work()
        elif self._worker is None or self._worker.done():
            # In a context of its own: no span of whoever happened to start it is current.
            self._worker = asyncio.create_task(
                self._work(), name="slack-announcer", context=contextvars.Context()
            )

    async def _worked_off(self) -> None:
        while self._worker is not None and not self._worker.done():
            await asyncio.shield(self._worker)

    async def _work(self) -> None:
        """Render the queued changes, one at a time, until none is left."""
        while self._queued:
            incident_id = next(iter(self._queued))
            queued = self._queued.pop(incident_id)
            change, parent = queued.pop(0)
            if queued:
                self._queued[incident_id] = queued  # its next change after the others' turn
            self._rendering = incident_id
            try:
                with telemetry.span(
                    names.SLACK_ANNOUNCE,
                    {names.INCIDENT_ID: change.incident_id, names.RUNBOOK_ID: change.runbook_id},
                    parent=parent,
                ):
                    await self._announce(change)
            except NotFoundError:
                log.warning("incident #%d vanished before it was announced", change.incident_id)
            except Exception:
                log.exception("could not announce a change of incident #%d", change.incident_id)
            finally:
                self._rendering = None

    async def _announce(self, change: IncidentChange) -> None:
        # Read first, so the mark never claims a change the render did not see.
        async with self._db.reads() as session:
            shown = await render_marks.updated_at_of(session, change.incident_id)
        if shown is None:
            raise NotFoundError(f"incident #{change.incident_id} not found")
        detail = await load_incident_detail(
            self._db,
            self._catalog,
            self._registry,
            change.incident_id,
            change_window=self._change_window,
            traces=self._traces,
            now=self._clock() if self._clock else None,
            planner=self._planner,
            alert_limit=MESSAGE_ALERT_SAMPLE,
            timeline_kinds=SUMMARY_TIMELINE_KINDS,
        )
        runbook = (
            self._catalog.current.runbooks.get(detail.runbook_id) if detail.runbook_id else None
        )
        message = render_incident(
            build_view(detail, runbook, group_ids=self._config.usergroup_ids)
        ).as_kwargs()
        channel = self._config.channel_for(detail.runbook_id, detail.service, self._fallback)
        async with self._db.transaction() as session:
            outcome = Enqueued.NO_MESSAGE
            if not change.kinds & {ChangeKind.OPENED}:
                outcome = await self._outbox.update_incident_message(session, detail.id, message)
            if outcome is Enqueued.NO_MESSAGE:
                if channel is None:
                    # Once per incident: the catch-up retries it every minute (the message
                    # is posted once the configuration names a channel and Ballast restarts).
                    if detail.id not in self._no_channel:
                        self._no_channel.add(detail.id)
                        log.error(
                            "no Slack channel for incident #%d (runbook %s, service %s): set "
                            "BALLAST_SLACK_CHANNEL or slack.service_channels in ballast.yaml",
                            detail.id,
                            detail.runbook_id,
                            detail.service,
                        )
                    return
                await self._outbox.post_incident_message(session, detail.id, channel, message)
            await render_marks.mark_rendered(session, detail.id, shown, self._now())
            # A note's key: its text at this state of the timeline (the same announcement
            # enqueued again is one reply; the same text later is another).
            state = await repo.newest_timeline_id(session, detail.id) if change.notes else None
            for note in dict.fromkeys(change.notes):
                text = note_text(note, self._config.usergroup_ids)
                key = hashlib.sha256(f"{state}:{text}".encode()).hexdigest()[:20]
                await self._outbox.post_thread(session, detail.id, text, key)
        if self._on_enqueued is not None:
            self._on_enqueued()
