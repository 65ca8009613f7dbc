"""The engine's claim reaches the unprocessed rows without walking the processed ones.

Processed rows stay in the inbox. Without ``ix_inbox_alerts_unprocessed`` PostgreSQL's planner
answered the claim (``processed_at IS NULL ORDER BY id LIMIT n``) by walking the primary key
over every processed row: a claim's cost grew with everything the inbox had ever held.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, text, update

from bot.intake.alert import Alert, AlertBatch, AlertSource, AlertStatus
from bot.store import inbox
from bot.store.database import Database
from bot.store.incident_batch import _CLAIM, _CLAIM_SKIP_LOCKED, claim
from bot.store.tables import InboxAlert
from tests.conftest import Clock
from tests.store.query_cost import literal_sql, query_cost

ROWS, WAITING = 3_000, 40


async def backlog(db: Any, clock: Clock, per_batch: int = 1_000) -> int:
    """ROWS stored, ``per_batch`` at a time with the clock a minute on between them, all but
    the last WAITING processed; returns the id of the last processed row."""
    alerts = [
        Alert(
            fingerprint=f"fp{i}",
            status=AlertStatus.FIRING,
            labels={"alertname": "ToolCallFailureRate", "tool": f"t{i}"},
            starts_at=clock(),
            source=AlertSource.ALERTMANAGER,
        )
        for i in range(ROWS)
    ]
    async with db.transaction() as session:
        for start in range(0, ROWS, per_batch):  # as webhooks store them, bounded batches
            stored = alerts[start : start + per_batch]
            batch = AlertBatch(source=AlertSource.ALERTMANAGER, alerts=stored)
            await inbox.store_batch(session, batch, clock())
            clock.advance(minutes=1)
        last_processed = ROWS - WAITING
        await session.execute(
            update(InboxAlert)
            .where(InboxAlert.id <= last_processed)
            .values(processed_at=clock(), outcome="new_incident")
        )
    async with db.engine.begin() as conn:  # committed: the planner's statistics
        await conn.execute(text("ANALYZE"))
    return last_processed


async def plan_of(db: Any, query: Any) -> str:
    async with db.engine.connect() as conn:
        sql = literal_sql(conn, query)
        explain = "EXPLAIN QUERY PLAN " if db.is_sqlite else "EXPLAIN "
        return "\n".join(" ".join(map(str, row)) for row in await conn.execute(text(explain + sql)))


def through_the_unprocessed(db: Any, plan: str) -> None:
    """Both through the partial index, which holds the unprocessed rows only: SQLite reads
    every row of it it needs in id order (without it, SQLite scanned the table; the
    ``(processed_at, id)`` index it read before is gone, migration 0014), PostgreSQL too."""
    if db.is_sqlite:
        reads = [line for line in plan.splitlines() if " inbox_alerts" in line]
        assert reads, plan
        assert all("USING INDEX ix_inbox_alerts_unprocessed" in line for line in reads), plan
    else:
        assert "ix_inbox_alerts_unprocessed" in plan, plan


async def test_the_claim_reads_through_the_unprocessed_index(db: Database, clock: Clock) -> None:
    last_processed = await backlog(db, clock)
    query: Any = _CLAIM if db.is_sqlite else _CLAIM_SKIP_LOCKED
    through_the_unprocessed(db, await plan_of(db, query.params(limit=10)))
    async with db.transaction() as session:
        claimed = await claim(session, 10)
    assert [row.id for row in claimed] == list(range(last_processed + 1, last_processed + 11))


async def test_the_inbox_lag_reads_one_row_through_the_unprocessed_index(
    db: Database, clock: Clock
) -> None:
    """What ``/metrics`` reads for ``ballast_inbox_lag_seconds`` at every scrape: the arrival of
    the next row the engine claims, not a minimum over every unprocessed row."""
    last_processed = await backlog(db, clock, per_batch=20)  # arrivals a minute apart
    through_the_unprocessed(db, await plan_of(db, inbox.OLDEST_UNPROCESSED))
    async with db.sessions() as session:
        oldest = await inbox.oldest_unprocessed(session)
        first = await session.get(InboxAlert, last_processed + 1)
    assert first is not None
    assert oldest == first.received_at
    # Its cost does not grow with the backlog; a minimum over the unprocessed rows' does.
    every = select(func.min(InboxAlert.received_at)).where(InboxAlert.processed_at.is_(None))
    before = (await cost(db, inbox.OLDEST_UNPROCESSED), await cost(db, every))
    async with db.transaction() as session:
        await session.execute(
            update(InboxAlert)
            .where(InboxAlert.id > last_processed - 10 * WAITING)
            .values(processed_at=None, outcome=None)
        )
    after = (await cost(db, inbox.OLDEST_UNPROCESSED), await cost(db, every))
    assert after[0] == before[0], (before, after)
    assert after[1] > before[1], (before, after)


async def cost(db: Any, query: Any) -> int:
    return await query_cost(db, query, "inbox_alerts")


async def fired_and_resolved(db: Any, clock: Clock, first: int, count: int) -> None:
    """``count`` alerts stored firing and then resolved (two rows each, as Alertmanager sends
    them), none processed: a backlog over a history of resolves. Then ANALYZE."""
    async with db.transaction() as session:
        for start in range(first, first + count, 500):
            alerts = []
            for i in range(start, min(start + 500, first + count)):
                started = clock()
                alerts.extend(
                    Alert(
                        fingerprint=f"fp{i}",
                        status=status,
                        labels={"alertname": "ToolCallFailureRate", "tool": f"t{i}"},
                        starts_at=started,
                        ends_at=started if status == AlertStatus.RESOLVED else None,
                        source=AlertSource.ALERTMANAGER,
                    )
                    for status in (AlertStatus.FIRING, AlertStatus.RESOLVED)
                )
            batch = AlertBatch(source=AlertSource.ALERTMANAGER, alerts=alerts)
            await inbox.store_batch(session, batch, clock())
            clock.advance(minutes=1)
    async with db.engine.begin() as conn:
        await conn.execute(text("ANALYZE"))


async def test_the_claims_stale_check_looks_up_the_claimed_rows_only(
    db: Database, clock: Clock
) -> None:
    """The claim tells each row whether a resolve of its (fingerprint, startsAt) is stored.
    Asked as EXISTS, PostgreSQL's planner, seeing many unprocessed rows, answered it with a
    hashed subplan that read the inbox's whole unique key, at every claim: the cost of
    claiming 10 rows grew with the inbox (500 → 2,000 alerts fired and resolved: 1,010 →
    4,010 rows read). Now a lookup per claimed row in that key."""
    query: Any = (_CLAIM if db.is_sqlite else _CLAIM_SKIP_LOCKED).params(limit=10)
    await fired_and_resolved(db, clock, 0, 500)
    before = await cost(db, query)
    await fired_and_resolved(db, clock, 500, 1_500)
    after = await cost(db, query)
    assert after == before, (before, after)
    async with db.transaction() as session:
        claimed = await claim(session, 10)
    assert [(row.status, row.resolve_stored) for row in claimed] == [
        (AlertStatus.FIRING, True),
        (AlertStatus.RESOLVED, True),
    ] * 5
