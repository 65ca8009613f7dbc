"""What a Slack message reads of a storm incident's alerts stays bounded however many it holds.

The message shows a sample, firing alerts first, each in arrival order, with the incident's
first alert (what links and parameters render from). Before migration 0015 the sample sorted
every alert of the incident (15-26 ms per render at 50,000, ``bench/storm_incident.py``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert, text

from bot.store import incidents as repo
from bot.store.database import Database
from bot.store.tables import IncidentAlert, table_of
from tests.conftest import Clock
from tests.store.query_cost import query_cost
from tests.store.test_timeline_reads import an_incident

SAMPLE = 50


async def alerts(db: Database, incident_id: int, at: datetime, statuses: list[str]) -> None:
    async with db.transaction() as session:
        start = await session.scalar(text("SELECT count(*) FROM incident_alerts")) or 0
        await session.execute(
            insert(table_of(IncidentAlert)),
            [
                {
                    "incident_id": incident_id,
                    "fingerprint": f"{start + n:016x}",
                    "status": status,
                    "starts_at": at,
                    "labels": {"alertname": "ToolFailing", "pod": f"p{start + n}"},
                    "annotations": {},
                    "source": "alertmanager",
                    "first_seen_at": at,
                    "last_seen_at": at,
                }
                for n, status in enumerate(statuses)
            ],
        )


async def cost(db: Database, query: Any) -> int:
    return await query_cost(db, query, "incident_alerts", seqscan=False)  # as when large


async def test_the_sample_and_the_first_alert_do_not_grow_with_the_alerts(
    db: Database, clock: Clock
) -> None:
    """Through ``ix_incident_alerts_incident_id_status_id``: the same cost with 1,000 or 4,000
    alerts (PostgreSQL's rows read, SQLite's virtual machine steps), with no statistics: SQLite
    as Ballast runs it (it never runs ANALYZE), PostgreSQL before autovacuum has seen a storm.
    Faults: read with one ``ORDER BY`` each (``status, id`` and ``id LIMIT 1``), both grow on
    PostgreSQL and the first alert on SQLite; without the index, both grow on both."""
    incident_id = await an_incident(db, clock())
    await alerts(db, incident_id, clock(), ["resolved", "firing"] * 500)
    sample = repo._ALERTS_SAMPLE.params(incident_id=incident_id, limit=SAMPLE)
    first = repo._FIRST_ALERT.params(incident_id=incident_id)
    before = (await cost(db, sample), await cost(db, first))
    await alerts(db, incident_id, clock(), ["firing", "resolved"] * 1_500)
    after = (await cost(db, sample), await cost(db, first))
    assert after == before, (before, after)


async def test_the_sample_is_firing_first_in_arrival_order(db: Database, clock: Clock) -> None:
    incident_id = await an_incident(db, clock())
    await alerts(db, incident_id, clock(), ["resolved", "resolved", "firing", "resolved", "firing"])
    async with db.sessions() as session:
        everything = await repo.alerts_of(session, incident_id)
        sample = await repo.alerts_sample(session, incident_id, 4)
        whole = await repo.alerts_sample(session, incident_id, 10)
    ids = [a.id for a in everything]
    # The first alert, then firing ones, then the others, each in arrival order.
    assert [a.id for a in sample] == [ids[0], ids[2], ids[4], ids[1]]
    assert [a.id for a in whole] == [ids[0], ids[2], ids[4], ids[1], ids[3]]


async def test_alerts_started_per_minute_are_counted_by_the_database(db: Database) -> None:
    """The console's chart of a storm incident: the database counts each minute's alerts
    (SQLite from its UTC text, PostgreSQL with date_trunc), whatever the second or the
    session's time zone; another incident's alerts are not counted."""
    from datetime import UTC, timedelta

    t0 = datetime(2026, 12, 6, 2, 59, 59, 999_999, tzinfo=UTC)
    incident_id = await an_incident(db, t0)
    other = await an_incident(db, t0, key="rb:other")
    await alerts(db, incident_id, t0, ["firing", "resolved"])
    await alerts(db, incident_id, t0 + timedelta(microseconds=1), ["firing"] * 3)
    await alerts(db, incident_id, t0 + timedelta(minutes=5, seconds=30), ["firing"])
    await alerts(db, other, t0, ["firing"] * 7)
    async with db.sessions() as session:
        if db.dialect == "postgresql":
            await session.execute(text("SET TIME ZONE 'Asia/Kolkata'"))  # +05:30
        counted = await repo.alert_starts_per_minute(session, incident_id)
    assert counted == [
        (datetime(2026, 12, 6, 2, 59, tzinfo=UTC), 2),
        (datetime(2026, 12, 6, 3, 0, tzinfo=UTC), 3),
        (datetime(2026, 12, 6, 3, 5, tzinfo=UTC), 1),
    ]
