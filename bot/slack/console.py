"""Without Slack credentials, say on the console what would have been posted.

Anyone can try Ballast on a laptop: incidents still open, update and resolve, and each change
is printed as the one line the Slack message would have carried. As in Slack, where the outbox
coalesces an incident's pending message updates, an incident whose only news is more alerts
gets at most one line every ``update_every`` seconds, the last one with its counts as they are
then: during a storm a line per incident per engine batch was a seventh of the engine's time
over 2,000 distinct incidents, and a log no one could read (issue 16).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from bot import telemetry
from bot.incidents.changes import ChangeKind, IncidentChange, Note
from bot.store import incidents as repo
from bot.store.database import Database
from bot.telemetry import names

log = logging.getLogger("ballast.console")

UPDATE_EVERY_SECONDS = 5.0
# Changes printed as they come: the incident's state changed, or someone has something to say.
_PRINTED_AT_ONCE = frozenset(
    {ChangeKind.OPENED, ChangeKind.REOPENED, ChangeKind.STATUS, ChangeKind.RESOLVED}
)


class ConsoleAnnouncer:
    def __init__(self, db: Database, *, update_every: float = UPDATE_EVERY_SECONDS) -> None:
        self._db = db
        self._every = update_every
        # Incident id -> when its last line was printed (time.monotonic), oldest first: an id
        # is moved to the end when printed, and dropped once its window is over.
        self._printed: dict[int, float] = {}
        # Incident id -> its latest change held back (only more alerts; the line reads the
        # incident's counts when it is printed).
        self._held: dict[int, IncidentChange] = {}
        self._flusher: asyncio.Task[None] | None = None
        self._drained = False  # shutting down: nothing is held any more

    async def incidents_changed(self, changes: list[IncidentChange]) -> None:
        now = time.monotonic()
        self._forget_before(now - self._every)
        at_once: list[IncidentChange] = []
        for change in changes:
            incident_id = change.incident_id
            if (
                change.notes
                or not change.kinds.isdisjoint(_PRINTED_AT_ONCE)
                or incident_id not in self._printed
                or self._drained
            ):
                self._held.pop(incident_id, None)  # this line shows the counts too
                at_once.append(change)
            else:
                self._held[incident_id] = change
        if at_once:
            await self._say(at_once)
        if self._held and (self._flusher is None or self._flusher.done()):
            self._flusher = asyncio.create_task(self._print_held(), name="console-updates")

    async def drain(self) -> None:
        """At shutdown, before the database closes: print what is held back now, and every
        change after this at once (no task is left waiting for a window)."""
        self._drained = True
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
            self._flusher = None
        held, self._held = list(self._held.values()), {}
        if held:
            await self._say(held)

    def _forget_before(self, cutoff: float) -> None:
        stale: list[int] = []
        for incident_id, at in self._printed.items():
            if at >= cutoff:
                break
            stale.append(incident_id)
        for incident_id in stale:
            del self._printed[incident_id]

    async def _print_held(self) -> None:
        """Each held change once its incident's window is over; until none is held."""
        while self._held:
            first = min(self._printed.get(i, 0.0) for i in self._held) + self._every
            await asyncio.sleep(max(0.0, first - time.monotonic()))
            now = time.monotonic()
            self._forget_before(now - self._every)
            due = [change for i, change in self._held.items() if i not in self._printed]
            for change in due:
                del self._held[change.incident_id]
            try:
                await self._say(due)
            except Exception:
                log.exception("could not print %d held incident update(s)", len(due))

    async def _say(self, changes: list[IncidentChange]) -> None:
        if not changes:
            return
        now = time.monotonic()
        for change in changes:
            self._printed.pop(change.incident_id, None)
            self._printed[change.incident_id] = now
        # One query for the whole batch: an engine batch over many incidents changes hundreds
        # at once, and a query each was most of the engine's time for 2,000 distinct incidents.
        async with self._db.sessions() as session:
            incidents = await repo.get_many(session, [c.incident_id for c in changes])
            for change in changes:
                incident = incidents.get(change.incident_id)
                if incident is None:
                    continue  # deleted since (a test's cleanup): nothing to show
                kinds = ",".join(sorted(kind.value for kind in change.kinds)) or "updated"
                verb = "post" if ChangeKind.OPENED in change.kinds else "update"
                # Where Slack would have been told: a span under the change's, as a delivery.
                with telemetry.span(
                    names.SLACK_CONSOLE,
                    {names.INCIDENT_ID: incident.id, names.RUNBOOK_ID: change.runbook_id},
                    parent=change.traceparent,
                ):
                    log.info(
                        "[slack: would %s] #%d %s [%s] %s — %s, %d/%d alerts firing%s",
                        verb,
                        incident.id,
                        incident.severity.upper(),
                        incident.status,
                        incident.title,
                        kinds,
                        incident.firing_count,
                        incident.alert_count,
                        ("; " + "; ".join(dict.fromkeys(_plain(n) for n in change.notes)))
                        if change.notes
                        else "",
                    )


def _plain(note: Note) -> str:
    return f"{note.text} by {note.actor}" if note.actor else note.text
