"""The worker's side of the Slack outbox: due rows claimed, outcomes recorded.

Used by :mod:`bot.slack.delivery`; callers enqueue through :class:`bot.slack.outbox.SlackOutbox`.
Rows of one lane go out one at a time in id order; on PostgreSQL claims use
``FOR UPDATE SKIP LOCKED`` so replicas never take the same row.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from bot.slack.outbox import ACTIVE, OutboxState, post_key
from bot.store.tables import SlackIncidentMessage, SlackOutboxEntry
from bot.store.upsert import upsert


async def due_heads(
    session: AsyncSession,
    now: datetime,
    lease: timedelta,
    limit: int,
    orphaned_before: datetime | None = None,
) -> list[SlackOutboxEntry]:
    """Due rows with nothing older still active in their lane, oldest first; claims older
    than ``lease`` count as due (their process died), and so do claims made before
    ``orphaned_before`` (by an earlier sender whose call can no longer be in flight). Locked
    with SKIP LOCKED on PostgreSQL, so replicas never take the same row."""
    row = SlackOutboxEntry
    older = aliased(SlackOutboxEntry)
    ahead = (
        select(older.id)
        .where(older.lane == row.lane, older.id < row.id, older.state.in_(ACTIVE))
        .exists()
    )
    due = or_(
        and_(row.state == OutboxState.PENDING, row.not_before <= now),
        and_(row.state == OutboxState.SENDING, row.claimed_at < now - lease),
    )
    if orphaned_before is not None:
        due = or_(due, and_(row.state == OutboxState.SENDING, row.claimed_at < orphaned_before))
    query = select(row).where(due, ~ahead).order_by(row.id).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True, of=row)
    return list((await session.scalars(query)).all())


async def claim(
    session: AsyncSession, row: SlackOutboxEntry, now: datetime, in_doubt: bool
) -> bool:
    """Mark ``row`` sending; False if it changed since it was read (a newer payload, another
    claim): then it is simply looked at again next pass. On SQLite the read is not inside the
    write transaction, so this check is what keeps a just-coalesced payload from being lost."""
    result = await session.execute(
        update(SlackOutboxEntry)
        .where(
            SlackOutboxEntry.id == row.id,
            SlackOutboxEntry.state == row.state,
            SlackOutboxEntry.attempts == row.attempts,
            SlackOutboxEntry.revision == row.revision,
        )
        .values(
            state=OutboxState.SENDING.value,
            claimed_at=now,
            attempts=row.attempts + 1,
            in_doubt=in_doubt,
        )
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


async def close(
    session: AsyncSession,
    row_id: int,
    state: OutboxState,
    now: datetime,
    *,
    error: str | None = None,
    response: dict[str, Any] | None = None,
    revision: int | None = None,
) -> bool:
    """End a row: sent, failed or superseded (only at ``revision``, when given)."""
    which = [SlackOutboxEntry.id == row_id]
    if revision is not None:
        which.append(SlackOutboxEntry.revision == revision)
    result = await session.execute(
        update(SlackOutboxEntry)
        .where(*which)
        .values(
            state=state.value,
            sent_at=now if state is OutboxState.SENT else None,
            error=error,
            response=response,
        )
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


async def defer(session: AsyncSession, row_id: int, not_before: datetime) -> None:
    await session.execute(
        update(SlackOutboxEntry)
        .where(SlackOutboxEntry.id == row_id, SlackOutboxEntry.state == OutboxState.PENDING)
        .values(not_before=not_before)
        .execution_options(synchronize_session=False)
    )


async def incident_messages(
    session: AsyncSession, incident_ids: set[int | None]
) -> dict[int, SlackIncidentMessage]:
    wanted = [incident_id for incident_id in incident_ids if incident_id is not None]
    if not wanted:
        return {}
    query = select(SlackIncidentMessage).where(SlackIncidentMessage.incident_id.in_(wanted))
    return {message.incident_id: message for message in (await session.scalars(query)).all()}


async def reschedule(
    session: AsyncSession,
    row_id: int,
    not_before: datetime,
    *,
    in_doubt: bool,
    error: str,
    failed: bool,
) -> None:
    """Back to pending until ``not_before``; ``failed``: a transient failure, counted for the
    backoff (a rate limit is not one)."""
    await session.execute(
        update(SlackOutboxEntry)
        .where(SlackOutboxEntry.id == row_id, SlackOutboxEntry.state == OutboxState.SENDING)
        .values(
            state=OutboxState.PENDING.value,
            not_before=not_before,
            in_doubt=in_doubt,
            error=error,
            failures=SlackOutboxEntry.failures + (1 if failed else 0),
        )
        .execution_options(synchronize_session=False)
    )


async def newer_pending(session: AsyncSession, coalesce_key: str, other_than: int) -> bool:
    """Whether a newer update replaced this one while it was being sent."""
    count = await session.scalar(
        select(func.count()).where(
            SlackOutboxEntry.coalesce_key == coalesce_key,
            SlackOutboxEntry.state == OutboxState.PENDING,
            SlackOutboxEntry.id != other_than,
        )
    )
    return bool(count)


async def post_state(session: AsyncSession, incident_id: int) -> str | None:
    return await session.scalar(
        select(SlackOutboxEntry.state).where(
            SlackOutboxEntry.idempotency_key == post_key(incident_id)
        )
    )


async def record_post(
    session: AsyncSession,
    incident_id: int,
    channel: str,
    ts: str,
    now: datetime,
    shown: str | None,
) -> None:
    """Where the incident message is; the first post wins (there is only ever one)."""
    await session.execute(
        upsert(session, SlackIncidentMessage)
        .values(
            incident_id=incident_id,
            channel=channel,
            ts=ts,
            thread_ts=ts,
            posted_at=now,
            updated_at=None,
            content_hash=shown,
        )
        .on_conflict_do_nothing(index_elements=["incident_id"])
    )


async def record_update(session: AsyncSession, incident_id: int, now: datetime, shown: str) -> None:
    await session.execute(
        update(SlackIncidentMessage)
        .where(SlackIncidentMessage.incident_id == incident_id)
        .values(updated_at=now, content_hash=shown)
        .execution_options(synchronize_session=False)
    )
