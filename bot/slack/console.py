"""Without Slack credentials, say on the console what would have been posted.

Anyone can try Ballast on a laptop: incidents still open, update and resolve, and each change
is printed as the one line the Slack message would have carried. As in Slack, where the outbox
coalesces an incident's pending message updates, an incident whose only news is more alerts
gets at most one line every ``update_every`` seconds, the last one with its counts as they are
then (:mod:`bot.slack.update_window`): during a storm a line per incident per engine batch was
a seventh of the engine's time over 2,000 distinct incidents, and a log no one could read
(issue 16).
"""

from __future__ import annotations

import logging

from bot import telemetry
from bot.incidents.changes import ChangeKind, IncidentChange, Note
from bot.slack.update_window import UPDATE_EVERY_SECONDS, UpdateWindow
from bot.store import incidents as repo
from bot.store.database import Database
from bot.telemetry import names

log = logging.getLogger("ballast.console")


class ConsoleAnnouncer:
    def __init__(self, db: Database, *, update_every: float = UPDATE_EVERY_SECONDS) -> None:
        self._db = db
        self._window = UpdateWindow(self._say, every=update_every, name="console-updates")

    async def incidents_changed(self, changes: list[IncidentChange]) -> None:
        await self._window.incidents_changed(changes)

    async def flush(self) -> None:
        """Print the updates held back now, without waiting for their window."""
        await self._window.flush()

    async def drain(self, grace: float | None = None) -> None:
        """At shutdown, before the database closes: print what is held back now (one query,
        whatever ``grace``), and every change after this at once (no task is left waiting
        for a window)."""
        del grace  # printing is one read; the Slack announcer's renders are what may take long
        await self._window.drain()

    async def _say(self, changes: list[IncidentChange]) -> None:
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
