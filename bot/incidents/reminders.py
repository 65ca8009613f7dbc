"""Reminders for incidents left in ``mitigating`` or ``monitoring``.

A mitigation that was applied and then forgotten is how a 3 a.m. workaround becomes next
month's outage. When an incident starts mitigating, a reminder is scheduled; each one that
finds the incident still mitigating or monitoring says so in its thread and schedules the
next, until the incident is resolved.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from bot.incidents.changes import ChangeBus, ChangeKind, Note
from bot.incidents.lifecycle import IncidentStatus
from bot.incidents.timeline import SYSTEM_ACTOR, TimelineKind
from bot.scheduling.timers import TimerKind
from bot.store import executions as timers
from bot.store import incidents as repo
from bot.store.database import Database
from bot.store.tables import Timer


async def schedule_reminder(
    session: AsyncSession, incident_id: int, number: int, due: datetime, now: datetime
) -> None:
    await timers.add_timer(
        session,
        kind=TimerKind.REMIND,
        dedup_key=f"{TimerKind.REMIND}:{incident_id}:{number}",
        due_at=due,
        incident_id=incident_id,
        payload={"number": number},
        now=now,
    )


class Reminder:
    def __init__(
        self,
        db: Database,
        bus: ChangeBus,
        *,
        clock: Callable[[], datetime],
        every: timedelta = timedelta(minutes=30),
    ) -> None:
        self._db = db
        self._bus = bus
        self._clock = clock
        self.every = every

    async def fire(self, timer: Timer) -> str:
        now = self._clock()
        incident_id = int(timer.incident_id or 0)
        async with self._db.transaction() as session:
            incident = await repo.get(session, incident_id)
            status = IncidentStatus(incident.status)
            if status not in (IncidentStatus.MITIGATING, IncidentStatus.MONITORING):
                return f"skipped: incident is {status.value}"
            since = incident.mitigated_at or incident.opened_at
            minutes = int((now - since).total_seconds() // 60)
            note = (
                f"Reminder: #{incident_id} has been {status.value} for {minutes} min. Check that "
                "the mitigation worked, then resolve the incident or try the next step."
            )
            repo.append_timeline(
                session,
                incident_id,
                at=now,
                actor=SYSTEM_ACTOR,
                kind=TimelineKind.REMINDER,
                summary=note,
            )
            number = int(timer.payload.get("number", 0)) + 1
            await schedule_reminder(session, incident_id, number, now + self.every, now)
        await self._bus.changed(incident_id, ChangeKind.UPDATED, Note(note))
        return "reminded"
