"""Timers that fire once, cluster-wide: APScheduler ticks, the ``timers`` table decides.

Each tick takes due timers with an atomic claim (an UPDATE that only one process can win),
runs the handler for the timer's kind, and marks it fired. A process that dies mid-fire
leaves a claim that expires after the lease, and another tick runs the handler again; the
handlers are idempotent (an undo of an undone mitigation does nothing).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from enum import StrEnum

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from opentelemetry.trace import StatusCode

from bot import telemetry
from bot.store import executions as store
from bot.store.database import Database
from bot.store.tables import Timer
from bot.telemetry import names

log = logging.getLogger(__name__)

TimerHandler = Callable[[Timer], Awaitable[str]]


class TimerKind(StrEnum):
    """What a timer does when it fires: the ``timers.kind`` column; one handler each."""

    ESCALATE = "escalate"  # the next escalation step of an unacknowledged incident
    REMIND = "remind"  # remind the thread of an incident left mitigating or monitoring
    AUTO_UNDO = "auto_undo"  # undo a mitigation whose runbook says "undo after"
    VERIFY = "verify"  # check in Prometheus whether an applied mitigation worked


class TimerService:
    def __init__(
        self,
        db: Database,
        handlers: Mapping[TimerKind, TimerHandler],
        *,
        clock: Callable[[], datetime],
        tick_seconds: float = 1.0,
        lease: timedelta = timedelta(minutes=2),
    ) -> None:
        self._db = db
        self._handlers: dict[str, TimerHandler] = {str(k): h for k, h in handlers.items()}
        self._clock = clock
        self._tick_seconds = tick_seconds
        self._lease = lease
        self._scheduler: AsyncIOScheduler | None = None

    def start(self) -> None:
        self._scheduler = AsyncIOScheduler(timezone="UTC")
        self._scheduler.add_job(
            self.tick,
            "interval",
            seconds=self._tick_seconds,
            max_instances=1,
            coalesce=True,
            id="timers",
        )
        self._scheduler.start()

    def shutdown(self) -> None:
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._scheduler = None

    async def tick(self) -> int:
        """Fire every due timer this process can claim; returns how many it fired."""
        now = self._clock()
        async with self._db.sessions() as session:
            due = await store.due_timers(session, now, self._lease)
        fired = 0
        for timer in due:
            async with self._db.transaction() as session:
                if not await store.claim_timer(session, timer, now, self._lease):
                    continue
            handler = self._handlers.get(timer.kind)
            # Each firing its own trace (a timer outlives any request): escalations, reminders,
            # auto undos and verifications, with their actions' spans under them.
            with telemetry.span(
                f"{names.TIMER} {timer.kind}",
                {names.INCIDENT_ID: timer.incident_id, names.TIMER_KIND: timer.kind},
            ) as span:
                try:
                    if handler is None:
                        outcome = f"no handler for timer kind {timer.kind!r}"
                        log.error("%s (timer %d)", outcome, timer.id)
                    else:
                        outcome = await handler(timer)
                except Exception as err:
                    log.exception("timer %d (%s) failed", timer.id, timer.kind)
                    outcome = f"failed: {type(err).__name__}: {err}"
                    span.set_status(StatusCode.ERROR, type(err).__name__)
            async with self._db.transaction() as session:
                await store.finish_timer(session, timer.id, self._clock(), outcome)
            fired += 1
        return fired
