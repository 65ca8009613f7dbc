"""Which incidents' Slack messages show their last change: the marks the announcer keeps.

The announcer renders a change after the change's commit (``bot.slack.announcer``), so a crash
or a failed render can leave a committed change unshown. With the outbox rows of each render
it writes the incident's ``updated_at`` as read before the render's reads (a mark never
claims more than the render saw); every change sets ``updated_at``, so an incident whose
value differs from its mark has a change no render showed. The comparison is inequality,
not order: ``updated_at`` is the writer's clock, and two writers' clocks need not agree.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.incidents.lifecycle import IncidentStatus
from bot.store.tables import Incident, SlackRender, table_of
from bot.store.upsert import upsert

INCIDENTS = table_of(Incident)
RENDERS = table_of(SlackRender)

_UPDATED_AT = select(INCIDENTS.c.updated_at).where(INCIDENTS.c.id == bindparam("incident_id"))
_BEHIND = (
    select(INCIDENTS.c.id)
    .outerjoin(RENDERS, RENDERS.c.incident_id == INCIDENTS.c.id)
    .where(
        or_(
            RENDERS.c.incident_id.is_(None),
            RENDERS.c.incident_updated_at != INCIDENTS.c.updated_at,
        ),
        or_(
            INCIDENTS.c.status != IncidentStatus.RESOLVED.value,
            INCIDENTS.c.updated_at >= bindparam("since"),
        ),
        INCIDENTS.c.id > bindparam("after"),
    )
    .order_by(INCIDENTS.c.id)
    .limit(bindparam("limit"))
)


async def updated_at_of(session: AsyncSession, incident_id: int) -> datetime | None:
    """The incident's ``updated_at`` now (None: no such incident)."""
    value: datetime | None = await session.scalar(_UPDATED_AT, {"incident_id": incident_id})
    return value


async def mark_rendered(
    session: AsyncSession, incident_id: int, updated_at: datetime, now: datetime
) -> None:
    """Record, in the render's outbox transaction, the state the render was made from."""
    statement = upsert(session, RENDERS).values(
        incident_id=incident_id, incident_updated_at=updated_at, rendered_at=now
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[RENDERS.c.incident_id],
            set_={"incident_updated_at": updated_at, "rendered_at": now},
        )
    )


async def behind(
    session: AsyncSession, *, resolved_since: datetime, after: int = 0, limit: int
) -> list[int]:
    """Incidents with a change no render showed, by id from the first after ``after``: every
    unresolved one, and those resolved since ``resolved_since`` (older ones are left as their
    messages show them)."""
    rows = await session.execute(_BEHIND, {"since": resolved_since, "after": after, "limit": limit})
    return [int(incident_id) for (incident_id,) in rows]


__all__ = ["behind", "mark_rendered", "updated_at_of"]
