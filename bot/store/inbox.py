"""The inbox: alerts as received, stored before the webhook answers, processed after.

``store`` inserts every alert of a batch in one transaction, ignoring states already stored
(same fingerprint, startsAt and status), so retries, HA duplicates and repeat notifications
cost one indexed lookup each and change nothing. ``claim`` hands unprocessed rows to one
worker; on PostgreSQL with ``FOR UPDATE SKIP LOCKED`` so replicas never take the same row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from bot.intake.alert import Alert, AlertBatch
from bot.store.tables import InboxAlert


@dataclass(frozen=True, slots=True)
class StoreResult:
    received: int
    stored: int

    @property
    def duplicates(self) -> int:
        return self.received - self.stored


async def store_batch(session: AsyncSession, batch: AlertBatch, now: datetime) -> StoreResult:
    """Insert the batch's alert states that are new. Call inside a transaction."""
    if not batch.alerts:
        return StoreResult(0, 0)
    rows = [_row(alert, batch, now) for alert in _unique_states(batch.alerts)]
    dialect = session.get_bind().dialect.name
    upsert: Any = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = (
        upsert(InboxAlert)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["fingerprint", "starts_at", "status"])
        .returning(InboxAlert.id)
    )
    stored = len((await session.execute(statement)).all())
    return StoreResult(len(batch.alerts), stored)


async def claim(session: AsyncSession, limit: int) -> Sequence[InboxAlert]:
    """Unprocessed rows, oldest first, locked for this transaction where the database can."""
    query = (
        select(InboxAlert)
        .where(InboxAlert.processed_at.is_(None))
        .order_by(InboxAlert.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return (await session.scalars(query)).all()


async def mark_processed(
    session: AsyncSession, row_id: int, now: datetime, outcome: str, incident_id: int | None
) -> None:
    await session.execute(
        update(InboxAlert)
        .where(InboxAlert.id == row_id)
        .values(processed_at=now, outcome=outcome, incident_id=incident_id)
    )


async def resolved_state_exists(
    session: AsyncSession, fingerprint: str, starts_at: datetime
) -> bool:
    """Whether this firing alert was already reported resolved (its notice came late)."""
    query = select(InboxAlert.id).where(
        InboxAlert.fingerprint == fingerprint,
        InboxAlert.starts_at == starts_at,
        InboxAlert.status == "resolved",
    )
    return (await session.scalar(query.limit(1))) is not None


async def oldest_unprocessed(session: AsyncSession) -> datetime | None:
    return await session.scalar(
        select(func.min(InboxAlert.received_at)).where(InboxAlert.processed_at.is_(None))
    )


async def count_unprocessed(session: AsyncSession) -> int:
    return int(
        await session.scalar(
            select(func.count()).select_from(InboxAlert).where(InboxAlert.processed_at.is_(None))
        )
        or 0
    )


def _unique_states(alerts: Sequence[Alert]) -> list[Alert]:
    """One row per (fingerprint, startsAt, status) even if the payload repeats an alert."""
    seen: dict[tuple[str, datetime, str], Alert] = {}
    for alert in alerts:
        seen.setdefault((alert.fingerprint, alert.starts_at, alert.status.value), alert)
    return list(seen.values())


def _row(alert: Alert, batch: AlertBatch, now: datetime) -> dict[str, Any]:
    return {
        "source": alert.source.value,
        "fingerprint": alert.fingerprint,
        "status": alert.status.value,
        "starts_at": alert.starts_at,
        "ends_at": alert.ends_at,
        "labels": alert.labels,
        "annotations": alert.annotations,
        "generator_url": alert.generator_url,
        "group_key": batch.group_key,
        "truncated_alerts": batch.truncated_alerts,
        "received_at": now,
        "processed_at": None,
        "incident_id": None,
        "outcome": None,
    }


__all__ = [
    "StoreResult",
    "claim",
    "count_unprocessed",
    "mark_processed",
    "oldest_unprocessed",
    "resolved_state_exists",
    "store_batch",
]
