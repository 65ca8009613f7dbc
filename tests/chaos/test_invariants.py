"""The invariant checker can fail: a deliberately injected double apply (and its kin) is found.

The state is what the executor writes for one applied mitigation, on a migrated PostgreSQL
database; the checker passes on it, then each injected fault breaks it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.store.database import Database
from bot.store.tables import Execution, Incident, TimelineEntry
from tests.chaos.invariants import violations
from tests.conftest import fresh_database_url

pytestmark = pytest.mark.postgres

KEY = "ballast:1:pause:1"
NOW = datetime(2026, 12, 4, 5, 0, tzinfo=UTC)


@pytest.fixture
def url(tmp_path: Path) -> Iterator[str]:
    with fresh_database_url("postgres", tmp_path, "ballast_checker") as plain:
        asyncio.run(_one_applied_mitigation(plain))
        yield plain


def _async(url: str) -> str:
    return "postgresql+asyncpg://" + url.split("://", 1)[1]


async def _one_applied_mitigation(url: str) -> None:
    db = Database(_async(url))
    try:
        await db.migrate()
        async with db.transaction() as session:
            session.add(
                Incident(
                    id=1,
                    key="k",
                    open_key="k",
                    status="mitigating",
                    title="t",
                    severity="sev2",
                    group_labels={},
                    detected_at=NOW,
                    opened_at=NOW,
                    updated_at=NOW,
                )
            )
            await session.flush()
            session.add(
                Execution(
                    incident_id=1,
                    mitigation_id="pause",
                    generation=1,
                    idempotency_key=KEY,
                    action="http_request",
                    params={},
                    risk="low",
                    state="applied",
                    requested_by="U0",
                    approvals={"actors": ["U0"]},
                    outcome={},
                    attempts=1,
                    created_at=NOW,
                    updated_at=NOW,
                    applied_at=NOW,
                )
            )
            session.add(applied_entry())
    finally:
        await db.close()


def applied_entry() -> TimelineEntry:
    return TimelineEntry(
        incident_id=1,
        at=NOW,
        actor="U0",
        kind="mitigation_applied",
        summary="applied",
        details={"mitigation_id": "pause", "idempotency_key": KEY},
    )


async def _inject(url: str, *rows: object, sql: str | None = None) -> None:
    db = Database(_async(url))
    try:
        async with db.transaction() as session:
            session.add_all(rows)
            if sql:
                from sqlalchemy import text

                await session.execute(text(sql))
    finally:
        await db.close()


def check(url: str, **overrides: object) -> list[str]:
    kwargs: dict[str, object] = {
        "acked": [],
        "statuses": {200: 10, 503: 2},
        "gateway_applied": {KEY: 1},
        "slack_top_level_messages": 0,
        **overrides,
    }
    return violations(url, **kwargs)  # type: ignore[arg-type]


def test_a_clean_state_passes(url: str) -> None:
    assert check(url) == []


def test_an_injected_double_apply_fails_the_check(url: str) -> None:
    asyncio.run(_inject(url, applied_entry()))
    (found,) = check(url)
    assert found == f"generation {KEY} applied 2 times (timeline)"


def test_a_backend_that_applied_a_key_twice_fails_the_check(url: str) -> None:
    assert check(url, gateway_applied={KEY: 2}) == [f"the gateway applied {KEY} 2 times"]


def test_a_stuck_execution_a_lost_alert_and_a_500_fail_the_check(url: str) -> None:
    asyncio.run(_inject(url, sql="UPDATE executions SET state = 'running'"))
    found = check(url, acked=["7"], statuses={200: 1, 500: 1})
    assert any("left running" in line for line in found), found
    assert any("never stored" in line for line in found), found
    assert any("5xx answers other than 503" in line for line in found), found
