"""Escalation: the runbook's steps fire on time while nobody has acknowledged the incident.

Steps are scheduled as timers when the incident opens (or re-opens), in the same transaction,
so a restart neither loses nor doubles them; each fires once cluster-wide and does nothing if
the incident was acknowledged or resolved in the meantime.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from actions.context import Messenger, Pager
from actions.errors import ActionError
from bot.incidents.actors import Actor, as_actor
from bot.incidents.lifecycle import IncidentStatus
from bot.incidents.timeline import SYSTEM_ACTOR, TimelineKind
from bot.runbooks.catalog import LiveCatalog
from bot.runbooks.schema import Runbook
from bot.scheduling.timers import TimerKind
from bot.store import executions as timers
from bot.store import incidents as repo
from bot.store.database import Database
from bot.store.tables import Incident, Timer

log = logging.getLogger(__name__)


async def schedule_escalations(
    session: AsyncSession, incident: Incident, runbook: Runbook, now: datetime
) -> None:
    """One timer per step, keyed by incident, step and re-open count (never scheduled twice)."""
    for index, step in enumerate(runbook.escalation):
        await timers.add_timer(
            session,
            kind=TimerKind.ESCALATE,
            dedup_key=escalation_key(incident.id, incident.reopen_count, index),
            due_at=incident.opened_at + step.after,
            incident_id=incident.id,
            payload={"step": index, "reopen_count": incident.reopen_count},
            now=now,
        )


def escalation_key(incident_id: int, reopen_count: int, step: int) -> str:
    """The timer's dedup key: one per incident, opening and step (the batched engine builds
    the same rows as :func:`schedule_escalations`, once the incident has its id)."""
    return f"{TimerKind.ESCALATE}:{incident_id}:{reopen_count}:{step}"


@dataclass(frozen=True, slots=True)
class EscalationResult:
    """What an early escalation did: ``step`` (1-based) is None when nothing fired."""

    incident_id: int
    step: int | None
    summary: str

    @property
    def text(self) -> str:
        if self.step is None:
            return self.summary
        return f"#{self.incident_id} escalation step {self.step}: {self.summary}"


class Escalator:
    """Fires escalation timers: notify people and page rotations, and journal it."""

    def __init__(
        self,
        db: Database,
        catalog: LiveCatalog,
        messenger: Messenger,
        pager: Pager,
        *,
        clock: Callable[[], datetime],
    ) -> None:
        self._db = db
        self._catalog = catalog
        self._messenger = messenger
        self._pager = pager
        self._clock = clock

    async def fire(self, timer: Timer) -> str:
        step_index = int(timer.payload["step"])
        async with self._db.sessions() as session:
            incident = await repo.get(session, int(timer.incident_id or 0))
        if incident.status == IncidentStatus.RESOLVED.value:
            return "skipped: resolved"
        if incident.acknowledged_at is not None:
            return f"skipped: acknowledged by {incident.acknowledged_by}"
        if incident.reopen_count != int(timer.payload.get("reopen_count", 0)):
            return "skipped: the incident was re-opened since"
        runbook = (
            self._catalog.current.runbooks.get(incident.runbook_id) if incident.runbook_id else None
        )
        if runbook is None or step_index >= len(runbook.escalation):
            return "skipped: the runbook no longer has this step"
        return await self.escalate(incident, runbook, step_index, actor=SYSTEM_ACTOR)

    async def escalate(
        self, incident: Incident, runbook: Runbook, step_index: int, *, actor: Actor | str
    ) -> str:
        who = as_actor(actor)
        step = runbook.escalation[step_index]
        minutes = int((self._clock() - incident.opened_at).total_seconds() // 60)
        text = (
            f"Incident #{incident.id} ({incident.severity.upper()}) {incident.title} has not been "
            f"acknowledged for {minutes} min. Runbook {runbook.id}, escalation step "
            f"{step_index + 1} of {len(runbook.escalation)}."
        )
        key = f"{TimerKind.ESCALATE}:{incident.id}:{incident.reopen_count}:{step_index}"
        done: list[str] = []
        problems: list[str] = []
        if step.notify:
            try:
                await self._messenger.notify(step.notify, text, idempotency_key=key)
                done.append("notified " + ", ".join(step.notify))
            except ActionError as err:
                problems.append(f"notify failed: {err}")
        if step.page:
            try:
                await self._pager.page(step.page, text, "critical", dedup_key=key)
                done.append(f"paged {step.page}")
            except ActionError as err:
                problems.append(f"page {step.page} failed: {err}")
        summary = "; ".join(done + problems) or "nothing to do"
        async with self._db.transaction() as session:
            repo.append_timeline(
                session,
                incident.id,
                at=self._clock(),
                actor=who.name,
                kind=TimelineKind.ESCALATED,
                summary=f"Escalation step {step_index + 1}: {summary}",
                details={
                    "step": step_index,
                    # Which opening this step belongs to: escalate_now counts the steps of the
                    # current one (a re-opened incident walks its path again from the start).
                    "reopen_count": incident.reopen_count,
                    "notify": step.notify,
                    "page": step.page,
                    "problems": problems,
                    **({} if who.is_system else {"auth": who.audit()}),
                },
            )
        if problems:
            log.error("escalation of #%d step %d: %s", incident.id, step_index + 1, problems)
        return summary

    async def escalate_now(self, incident_id: int, actor: Actor | str) -> str:
        """``/ballast escalate``: fire the next step now (and not again when its time comes)."""
        return (await self.escalate_next(incident_id, actor)).text

    async def escalate_next(self, incident_id: int, actor: Actor | str) -> EscalationResult:
        """Fire the next step of the current opening now; ``step`` is None when none is left."""
        async with self._db.sessions() as session:
            incident = await repo.get(session, incident_id)
            fired = sum(
                1
                for entry in await repo.timeline_of(
                    session, incident_id, kinds=[TimelineKind.ESCALATED]
                )
                if entry.details.get("reopen_count", 0) == incident.reopen_count
            )
        if incident.status == IncidentStatus.RESOLVED.value:
            return EscalationResult(
                incident_id, None, f"#{incident_id} is resolved: not escalated."
            )
        runbook = (
            self._catalog.current.runbooks.get(incident.runbook_id) if incident.runbook_id else None
        )
        if runbook is None or not runbook.escalation:
            return EscalationResult(
                incident_id,
                None,
                f"#{incident_id} has no escalation path (its runbook defines none).",
            )
        if fired >= len(runbook.escalation):
            return EscalationResult(
                incident_id,
                None,
                f"All {len(runbook.escalation)} escalation steps of #{incident_id} have fired.",
            )
        key = f"{TimerKind.ESCALATE}:{incident.id}:{incident.reopen_count}:{fired}"
        name = as_actor(actor).name
        async with self._db.transaction() as session:
            await timers.cancel_timer(session, key, self._clock(), f"escalated early by {name}")
        summary = await self.escalate(incident, runbook, fired, actor=actor)
        return EscalationResult(incident_id, fired + 1, summary)
