"""``insert_timeline``: one INSERT now, after the entries the session still holds unflushed (the
session autoflushes before every statement; through its connection the order would flip)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from bot.store import incidents as repo
from bot.store.database import Database
from bot.store.tables import TimelineEntry
from tests.rows import incident_row

T0 = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


async def test_an_entry_inserted_now_follows_the_ones_added_before_it(db: Database) -> None:
    async with db.transaction() as session:
        incident = incident_row("rb:x|{}", T0, runbook_id="x", title="X", service=None)
        session.add(incident)
        await session.flush()
        repo.append_timeline(session, incident.id, at=T0, actor="a", kind="note", summary="one")
        await repo.insert_timeline(
            session, incident.id, at=T0, actor="b", kind="note", summary="two", details={"n": 2}
        )
        repo.append_timeline(session, incident.id, at=T0, actor="c", kind="note", summary="three")
    async with db.sessions() as session:
        rows = (
            await session.execute(
                select(TimelineEntry.summary, TimelineEntry.actor, TimelineEntry.details).order_by(
                    TimelineEntry.id
                )
            )
        ).all()
    assert [tuple(row) for row in rows] == [
        ("one", "a", {}),
        ("two", "b", {"n": 2}),
        ("three", "c", {}),
    ]
