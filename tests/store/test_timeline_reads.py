"""Reads of an incident's own timeline entries stay bounded however many alerts it holds.

A storm incident has one timeline entry per alert. The verifier, the scorecard, the exemplars,
the escalation ladder and the incident's Slack message each look for a few kinds of entries;
they used to read every entry into objects (about a second and over 100 MB at 50,000 alerts,
``bench/storm_incident.py``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, text

from actions.registry import default_registry
from bot.incidents.detail import SUMMARY_TIMELINE_KINDS, load_incident_detail
from bot.incidents.timeline import TimelineKind
from bot.runbooks.catalog import LiveCatalog
from bot.runbooks.loader import load_catalog
from bot.store import incidents as repo
from bot.store.database import Database
from bot.store.tables import TimelineEntry, table_of
from tests.conftest import REPO, Clock
from tests.rows import incident_row
from tests.store.query_cost import query_cost

VERDICT = {
    "mitigation_id": "disable-tool",
    "generation": 1,
    "verdict": "recovered",
    "checked_at": "2026-12-06T08:00:00+00:00",
    "values": [],
}


async def an_incident(db: Database, at: datetime, key: str = "rb:storm") -> int:
    async with db.transaction() as session:
        incident = incident_row(key, at)
        session.add(incident)
        await session.flush()
        return incident.id


async def entries(db: Database, incident_id: int, at: datetime, kinds: list[str]) -> None:
    async with db.transaction() as session:
        await session.execute(
            insert(table_of(TimelineEntry)),
            [
                {
                    "incident_id": incident_id,
                    "at": at + timedelta(seconds=n),
                    "actor": "test",
                    "kind": kind,
                    "summary": kind,
                    "details": VERDICT if kind == TimelineKind.MITIGATION_VERIFIED else {"n": n},
                }
                for n, kind in enumerate(kinds)
            ],
        )


async def test_entries_of_some_kinds_in_order(db: Database, clock: Clock) -> None:
    incident_id = await an_incident(db, clock())
    kinds = [
        TimelineKind.OPENED,
        TimelineKind.ALERT_FIRING,
        TimelineKind.MITIGATION_VERIFIED,
        TimelineKind.ALERT_FIRING,
        TimelineKind.SCORECARD,
        TimelineKind.MITIGATION_VERIFIED,
    ]
    await entries(db, incident_id, clock(), kinds)
    other = await an_incident(db, clock(), "rb:other")
    await entries(db, other, clock(), [TimelineKind.MITIGATION_VERIFIED])
    async with db.sessions() as session:
        verified = await repo.timeline_of(
            session, incident_id, kinds=[TimelineKind.MITIGATION_VERIFIED]
        )
        own = await repo.timeline_of(
            session, incident_id, kinds=(TimelineKind.SCORECARD, TimelineKind.OPENED)
        )
        none = await repo.timeline_of(session, incident_id, kinds=[])
        everything = await repo.timeline_of(session, incident_id)
    assert [e.kind for e in verified] == ["mitigation_verified", "mitigation_verified"]
    assert [e.id for e in verified] == sorted(e.id for e in verified)
    assert [e.kind for e in own] == ["opened", "scorecard"]
    assert none == []
    assert [e.kind for e in everything] == [str(kind) for kind in kinds]


async def test_newest_timeline_id(db: Database, clock: Clock) -> None:
    incident_id = await an_incident(db, clock())
    async with db.sessions() as session:
        assert await repo.newest_timeline_id(session, incident_id) is None
    await entries(db, incident_id, clock(), [TimelineKind.OPENED, TimelineKind.ALERT_FIRING])
    async with db.sessions() as session:
        first = await repo.newest_timeline_id(session, incident_id)
        newest = max(e.id for e in await repo.timeline_of(session, incident_id))
    assert first == newest
    await entries(db, incident_id, clock(), [TimelineKind.ALERT_FIRING])
    async with db.sessions() as session:
        later = await repo.newest_timeline_id(session, incident_id)
    assert later is not None
    assert later > first


async def test_reading_some_kinds_does_not_grow_with_the_alerts(db: Database, clock: Clock) -> None:
    """Through ``ix_timeline_incident_id_kind_id``: what the database reads for an incident's
    verdicts is the same with 1,000 or 4,000 alert entries (PostgreSQL's rows read, SQLite's
    virtual machine steps); the whole timeline's grows."""
    incident_id = await an_incident(db, clock())
    await entries(db, incident_id, clock(), [TimelineKind.MITIGATION_VERIFIED])
    await entries(db, incident_id, clock(), [TimelineKind.ALERT_FIRING] * 1_000)
    await analyze(db)
    kinds = repo._TIMELINE_OF_KINDS.params(
        incident_id=incident_id, kinds=[TimelineKind.MITIGATION_VERIFIED.value]
    )
    # The message's kinds: with more than one, SQLite read every entry when the query was
    # ordered (it spared itself the sort instead).
    message = repo._TIMELINE_OF_KINDS.params(
        incident_id=incident_id, kinds=sorted(SUMMARY_TIMELINE_KINDS)
    )
    every = repo._TIMELINE.params(incident_id=incident_id)
    before = (await cost(db, kinds), await cost(db, message), await cost(db, every))
    await entries(db, incident_id, clock(), [TimelineKind.ALERT_FIRING] * 3_000)
    await analyze(db)
    after = (await cost(db, kinds), await cost(db, message), await cost(db, every))
    assert after[:2] == before[:2], (before, after)
    assert after[2] > 2 * before[2], (before, after)


async def test_the_message_reads_the_entries_it_shows(db: Database, clock: Clock) -> None:
    """The Slack message's read: its verdicts and scorecards, not the alerts' entries."""
    incident_id = await an_incident(db, clock())
    await entries(
        db,
        incident_id,
        clock(),
        [TimelineKind.OPENED, *[TimelineKind.ALERT_FIRING] * 50, TimelineKind.MITIGATION_VERIFIED],
    )
    load = load_catalog([REPO / "runbooks"])
    assert load.catalog is not None
    catalog, registry = LiveCatalog(load.catalog), default_registry()
    message = await load_incident_detail(
        db, catalog, registry, incident_id, alert_limit=5, timeline_kinds=SUMMARY_TIMELINE_KINDS
    )
    full = await load_incident_detail(db, catalog, registry, incident_id)
    assert [e.kind for e in message.timeline] == ["mitigation_verified"]
    assert len(full.timeline) == 52
    assert message.verifications == full.verifications
    assert [v.verdict for v in message.verifications] == ["recovered"]


async def analyze(db: Database) -> None:
    """PostgreSQL's statistics, as autovacuum keeps them; SQLite as Ballast runs it, with none
    (it never runs ANALYZE there), which is what its planner chooses by."""
    if db.is_sqlite:
        return
    async with db.engine.begin() as conn:
        await conn.execute(text("ANALYZE"))


async def cost(db: Database, query: Any) -> int:
    return await query_cost(db, query, "timeline", seqscan=False)  # small tables: as when large
