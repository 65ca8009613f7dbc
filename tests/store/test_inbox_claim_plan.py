"""The engine's claim reaches the unprocessed rows without walking the processed ones.

Processed rows stay in the inbox. Without ``ix_inbox_alerts_unprocessed`` PostgreSQL's planner
answered the claim (``processed_at IS NULL ORDER BY id LIMIT n``) by walking the primary key
over every processed row: a claim's cost grew with everything the inbox had ever held.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text, update

from bot.intake.alert import Alert, AlertBatch, AlertSource, AlertStatus
from bot.store import inbox
from bot.store.incident_batch import _CLAIM, _CLAIM_SKIP_LOCKED, claim
from bot.store.tables import InboxAlert
from tests.conftest import Clock, DatabaseUnderTest

ROWS, WAITING = 3_000, 40


async def test_the_claim_reads_through_the_unprocessed_index(
    test_database: DatabaseUnderTest, clock: Clock
) -> None:
    db = test_database.make()
    await db.migrate()
    try:
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
            for start in range(0, ROWS, 1_000):  # as webhooks store them, a bounded batch each
                batch = AlertBatch(
                    source=AlertSource.ALERTMANAGER, alerts=alerts[start : start + 1_000]
                )
                await inbox.store_batch(session, batch, clock())
            last_processed = ROWS - WAITING
            await session.execute(
                update(InboxAlert)
                .where(InboxAlert.id <= last_processed)
                .values(processed_at=clock(), outcome="new_incident")
            )
        query: Any = _CLAIM if db.is_sqlite else _CLAIM_SKIP_LOCKED
        async with db.engine.connect() as conn:
            await conn.execute(text("ANALYZE"))
            bound = query.params(limit=10)
            sql = str(bound.compile(conn.sync_connection, compile_kwargs={"literal_binds": True}))
            explain = "EXPLAIN QUERY PLAN " if db.is_sqlite else "EXPLAIN "
            plan = "\n".join(
                " ".join(map(str, row)) for row in await conn.execute(text(explain + sql))
            )
        # PostgreSQL through the partial index. SQLite through an index, either that one or
        # (processed_at, id), which its planner reads in id order for processed_at IS NULL
        # (without the partial index it scanned the table). Neither walks the processed rows.
        if db.is_sqlite:
            assert "USING INDEX ix_inbox_alerts_" in plan, plan
            assert "SCAN" not in plan, plan
        else:
            assert "ix_inbox_alerts_unprocessed" in plan, plan
        async with db.transaction() as session:
            claimed = await claim(session, 10)
        assert [row.id for row in claimed] == list(range(last_processed + 1, last_processed + 11))
    finally:
        await db.close()
