"""The ``verify`` timers of an applied mitigation: one per check, keyed by execution and attempt.

Scheduled in the transaction that records the apply (so a restart neither loses nor doubles
the first check), and again by :mod:`bot.verification` after each check that has no verdict
yet. The dedup key names the execution (incident, mitigation, generation) and the attempt, so
each check of each run fires once cluster-wide.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from bot.scheduling.timers import TimerKind
from bot.store import executions as store
from bot.store.tables import Execution


def verification_key(idempotency_key: str, attempt: int) -> str:
    return f"{TimerKind.VERIFY}:{idempotency_key}:{attempt}"


async def schedule_verification(
    session: AsyncSession,
    execution: Execution,
    after: timedelta,
    now: datetime,
    *,
    attempt: int = 1,
) -> None:
    """The ``attempt``-th check of ``execution`` (just applied, or still without a verdict)."""
    await store.add_timer(
        session,
        kind=TimerKind.VERIFY,
        dedup_key=verification_key(execution.idempotency_key, attempt),
        due_at=now + after,
        incident_id=execution.incident_id,
        payload={
            "mitigation_id": execution.mitigation_id,
            "generation": execution.generation,
            "attempt": attempt,
        },
        now=now,
    )
