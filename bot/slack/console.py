"""Without Slack credentials, say on the console what would have been posted.

Anyone can try Ballast on a laptop: incidents still open, update and resolve, and each change
is printed as the one line the Slack message would have carried.
"""

from __future__ import annotations

import logging

from bot import telemetry
from bot.incidents.changes import ChangeKind, IncidentChange, Note
from bot.store import incidents as repo
from bot.store.database import Database
from bot.telemetry import names

log = logging.getLogger("ballast.console")


class ConsoleAnnouncer:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def incidents_changed(self, changes: list[IncidentChange]) -> None:
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
