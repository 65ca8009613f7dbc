"""Migration 0016 marks every incident already stored as rendered: upgrading, or configuring
Slack on a server that ran with the console, does not post the history again. New incidents
get no mark until a render (the announcer's catch-up: tests/slack_scenarios/test_catch_up.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alembic import command
from sqlalchemy import Connection, text

from bot.slack import render_marks
from bot.store.database import Database, alembic_config

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def _incident(connection: Connection, key: str, status: str, updated_at: datetime) -> None:
    connection.execute(
        text(
            "INSERT INTO incidents (key, open_key, status, title, severity, group_labels, "
            "alert_count, firing_count, detected_at, opened_at, reopen_count, updated_at) "
            "VALUES (:key, :open_key, :status, 'title', 'warning', '{}', 1, 1, :at, :at, 0, :at)"
        ),
        {
            "key": key,
            "open_key": None if status == "resolved" else key,
            "status": status,
            "at": updated_at,
        },
    )


async def test_incidents_stored_before_0016_count_as_rendered(db: Database) -> None:
    await db.migrate()
    async with db.engine.begin() as conn:
        await conn.run_sync(lambda c: command.downgrade(alembic_config(c), "0015"))
        await conn.run_sync(lambda c: _incident(c, "open-before", "triggered", NOW))
        await conn.run_sync(lambda c: _incident(c, "resolved-before", "resolved", NOW))
        await conn.run_sync(lambda c: command.upgrade(alembic_config(c), "head"))
        await conn.run_sync(lambda c: _incident(c, "open-after", "triggered", NOW))
    async with db.reads() as session:
        behind = await render_marks.behind(
            session, resolved_since=NOW - timedelta(days=1), limit=10
        )
    assert behind == [3]  # only the incident stored after the upgrade
