"""The alerts received over a past window, for replaying them through another catalog.

``ballast runbooks diff`` asks what a runbook change would do to real traffic: the inbox holds
every distinct alert state received, so the latest state of each fingerprint since a moment is
the traffic to replay (``GET /api/v1/alerts?since=`` and ``ballast alerts export``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.store.tables import InboxAlert


async def alerts_since(session: AsyncSession, since: datetime, limit: int) -> list[dict[str, Any]]:
    """The latest state of each fingerprint received at or after ``since``, newest first, at
    most ``limit`` of them."""
    latest = (
        select(func.max(InboxAlert.id).label("id"))
        .where(InboxAlert.received_at >= since)
        .group_by(InboxAlert.fingerprint)
        .subquery()
    )
    rows = await session.scalars(
        select(InboxAlert)
        .join(latest, InboxAlert.id == latest.c.id)
        .order_by(InboxAlert.id.desc())
        .limit(limit)
    )
    return [
        {
            "fingerprint": row.fingerprint,
            "status": row.status,
            "labels": row.labels,
            "annotations": row.annotations,
            "starts_at": row.starts_at.isoformat(),
            "received_at": row.received_at.isoformat(),
            "source": row.source,
        }
        for row in rows
    ]
