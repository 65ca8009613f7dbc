"""Keeps each incident's Slack message in step with the incident, through the outbox.

One message per incident, posted when it opens and updated in place (coalesced by the outbox)
on every change; the details of a change go to the message's thread. Everything is enqueued
in one transaction, so a restart neither loses nor doubles a message.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from actions.registry import ActionRegistry
from bot import telemetry
from bot.changelog.ranking import DEFAULT_WINDOW
from bot.config import SlackConfig
from bot.errors import NotFoundError
from bot.incidents.changes import ChangeKind, IncidentChange
from bot.incidents.detail import SUMMARY_TIMELINE_KINDS, Planner, load_incident_detail
from bot.incidents.traces import TraceLinks
from bot.runbooks.catalog import LiveCatalog
from bot.slack.incident_message import render_incident
from bot.slack.outbox import Enqueued, SlackOutbox
from bot.slack.text import note_text
from bot.slack.view import MESSAGE_ALERT_SAMPLE, build_view
from bot.store import incidents as repo
from bot.store.database import Database
from bot.telemetry import names

log = logging.getLogger(__name__)


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
        # One announcement of an incident at a time in this process: each renders what it read
        # and enqueues it later, so two overlapping ones (the engine's "opened" and the auto
        # mitigation's record right after it) could enqueue the older render last.
        self._announcing: dict[int, tuple[asyncio.Lock, int]] = {}  # lock, its users

    async def incidents_changed(self, changes: list[IncidentChange]) -> None:
        for change in changes:
            try:
                with telemetry.span(
                    names.SLACK_ANNOUNCE,
                    {names.INCIDENT_ID: change.incident_id, names.RUNBOOK_ID: change.runbook_id},
                    parent=change.traceparent,
                ):
                    await self._announce_in_order(change)
            except NotFoundError:
                log.warning("incident #%d vanished before it was announced", change.incident_id)

    async def _announce_in_order(self, change: IncidentChange) -> None:
        """Announce after any announcement of the same incident under way here (so the last
        message enqueued is rendered from the last state read)."""
        incident_id = change.incident_id
        lock, users = self._announcing.get(incident_id, (asyncio.Lock(), 0))
        self._announcing[incident_id] = (lock, users + 1)
        try:
            async with lock:
                await self._announce(change)
        finally:
            lock, users = self._announcing[incident_id]
            if users == 1:
                del self._announcing[incident_id]
            else:
                self._announcing[incident_id] = (lock, users - 1)

    async def _announce(self, change: IncidentChange) -> None:
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
                    log.error(
                        "no Slack channel for incident #%d (runbook %s, service %s): set "
                        "BALLAST_SLACK_CHANNEL or slack.service_channels in ballast.yaml",
                        detail.id,
                        detail.runbook_id,
                        detail.service,
                    )
                    return
                await self._outbox.post_incident_message(session, detail.id, channel, message)
            # A note's key: its text at this state of the timeline (the same announcement
            # enqueued again is one reply; the same text later is another).
            state = await repo.newest_timeline_id(session, detail.id) if change.notes else None
            for note in dict.fromkeys(change.notes):
                text = note_text(note, self._config.usergroup_ids)
                key = hashlib.sha256(f"{state}:{text}".encode()).hexdigest()[:20]
                await self._outbox.post_thread(session, detail.id, text, key)
        if self._on_enqueued is not None:
            self._on_enqueued()
