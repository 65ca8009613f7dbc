"""The inbox's retention: which stored alert states go, which stay, and the pass that deletes
them (bot/store/inbox_retention.py), on both databases."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import select, update

from bot.config import BallastConfig, InboxConfig
from bot.incidents.outcome import AlertOutcome
from bot.intake.alert import Alert, AlertBatch, AlertSource, AlertStatus
from bot.metrics import Metrics
from bot.store import inbox, inbox_retention
from bot.store.database import Database
from bot.store.inbox_retention import (
    MINIMUM,
    STALE,
    InboxPruner,
    StoredState,
    expired,
    prune_batch,
)
from bot.store.tables import InboxAlert
from tests.conftest import FIXTURES, Clock

RETENTION = timedelta(days=30)
AM = FIXTURES / "alertmanager-captured"


def state(**changes: Any) -> StoredState:
    values: dict[str, Any] = {
        "id": 1,
        "received_at": datetime(2026, 10, 1, tzinfo=UTC),
        "processed_at": datetime(2026, 10, 1, tzinfo=UTC),
        "status": "resolved",
        "outcome": "resolved",
        "resolve_stored": False,
    }
    return StoredState(**(values | changes))


def test_expired_by_state() -> None:
    cutoff = datetime(2026, 11, 1, tzinfo=UTC)
    assert expired(state(), cutoff)  # an old resolve
    assert not expired(state(processed_at=None), cutoff)  # never before the engine saw it
    assert not expired(state(received_at=cutoff), cutoff)  # not older than the retention
    firing = {"status": "firing", "outcome": AlertOutcome.NEW_ALERT.value}
    # A firing state whose resolve never came may still be resent (repeat_interval): kept.
    assert not expired(state(**firing), cutoff)
    assert not expired(state(**(firing | {"outcome": AlertOutcome.ERROR.value})), cutoff)
    assert expired(state(**firing, resolve_stored=True), cutoff)
    assert expired(state(**(firing | {"outcome": STALE})), cutoff)  # arrived after its resolve


def test_the_stale_outcome_is_the_engines() -> None:
    assert AlertOutcome.STALE.value == STALE


def test_the_retention_is_at_least_a_day_or_off() -> None:
    assert BallastConfig().inbox.retention == timedelta(days=30)
    assert InboxConfig.model_validate({"retention": None}).retention is None
    assert InboxConfig.model_validate({"retention": "1d"}).retention == MINIMUM
    with pytest.raises(ValidationError, match="at least 1d"):
        InboxConfig.model_validate({"retention": "12h"})
    with pytest.raises(ValueError, match="at least"):
        InboxPruner(None, timedelta(hours=1), Metrics(), Clock())  # type: ignore[arg-type]


def alert(fingerprint: str, status: AlertStatus, starts_at: datetime) -> Alert:
    return Alert(
        fingerprint=fingerprint,
        status=status,
        labels={"alertname": "ToolCallFailureRate", "tool": fingerprint},
        starts_at=starts_at,
        ends_at=starts_at if status == AlertStatus.RESOLVED else None,
        source=AlertSource.ALERTMANAGER,
    )


async def store(db: Database, clock: Clock, *alerts: Alert) -> None:
    async with db.transaction() as session:
        batch = AlertBatch(source=AlertSource.ALERTMANAGER, alerts=list(alerts))
        await inbox.store_batch(session, batch, clock())


async def process(db: Database, clock: Clock, fingerprint: str, outcome: str) -> None:
    """Record the engine's outcome for every unprocessed row of ``fingerprint``."""
    async with db.transaction() as session:
        await session.execute(
            update(InboxAlert)
            .where(InboxAlert.fingerprint == fingerprint, InboxAlert.processed_at.is_(None))
            .values(processed_at=clock(), outcome=outcome)
        )


async def resolved_and_processed(
    db: Database, clock: Clock, fingerprint: str, starts_at: datetime | None = None
) -> None:
    await store(db, clock, alert(fingerprint, AlertStatus.RESOLVED, starts_at or clock()))
    await process(db, clock, fingerprint, AlertOutcome.RESOLVED_WITHOUT_INCIDENT)


async def remaining(db: Database) -> list[tuple[str, str]]:
    async with db.sessions() as session:
        rows = await session.execute(
            select(InboxAlert.fingerprint, InboxAlert.status).order_by(InboxAlert.id)
        )
        return [(fp, status) for fp, status in rows]


async def history(db: Database, clock: Clock) -> datetime:
    """Alert states of every kind retention tells apart, stored 40 days ago (but the last
    ones); returns when the old ones started."""
    started = clock()
    # Fired and resolved: both go.
    await store(db, clock, alert("done", AlertStatus.FIRING, started))
    await process(db, clock, "done", AlertOutcome.NEW_ALERT)
    await store(db, clock, alert("done", AlertStatus.RESOLVED, started))
    await process(db, clock, "done", AlertOutcome.RESOLVED)
    # Still firing (no resolve stored): kept, so that its resends stay duplicates.
    await store(db, clock, alert("firing", AlertStatus.FIRING, started))
    await process(db, clock, "firing", AlertOutcome.NEW_ALERT)
    # Resolved, then its firing arrived late (stale): both go.
    await store(db, clock, alert("late", AlertStatus.RESOLVED, started))
    await process(db, clock, "late", AlertOutcome.RESOLVED_WITHOUT_INCIDENT)
    await store(db, clock, alert("late", AlertStatus.FIRING, started))
    await process(db, clock, "late", AlertOutcome.STALE)
    # Never processed (the engine is behind, or failed on it): kept whatever its age.
    await store(db, clock, alert("waiting", AlertStatus.RESOLVED, started))
    clock.advance(days=35)
    # Newer than the retention: kept.
    await resolved_and_processed(db, clock, "recent")
    clock.advance(days=5)
    return started


KEPT = [("firing", "firing"), ("waiting", "resolved"), ("recent", "resolved")]


async def test_a_pass_deletes_the_expired_states_and_keeps_the_rest(
    db: Database, clock: Clock
) -> None:
    started = await history(db, clock)
    metrics = Metrics()
    pruner = InboxPruner(db, RETENTION, metrics, clock, rest=0)
    await pruner.prune()
    assert await remaining(db) == KEPT
    assert metrics.registry.get_sample_value("ballast_inbox_pruned_total") == 4
    # What retention keeps is what makes a resend a duplicate: Alertmanager resends a firing
    # alert every repeat_interval for as long as it fires.
    async with db.transaction() as session:
        batch = AlertBatch(
            source=AlertSource.ALERTMANAGER,
            alerts=[alert("firing", AlertStatus.FIRING, started)],
        )
        assert (await inbox.store_batch(session, batch, clock())).duplicates == 1
    # A second pass finds nothing more.
    await pruner.prune()
    assert await remaining(db) == KEPT
    assert metrics.registry.get_sample_value("ballast_inbox_pruned_total") == 4


async def test_the_pass_walks_the_inbox_in_batches_and_stops_at_the_cutoff(
    db: Database, clock: Clock
) -> None:
    for i in range(7):
        await resolved_and_processed(db, clock, f"old{i}")
    clock.advance(days=31)
    new = [("new", "resolved")] * 4
    for i in range(4):
        await resolved_and_processed(db, clock, "new", clock() + timedelta(seconds=i))
    cutoff = clock() - RETENTION
    first = await prune_batch(db, cutoff, 0, limit=3)
    assert (first.deleted, first.done) == (3, False)
    second = await prune_batch(db, cutoff, first.last_id, limit=3)
    assert (second.deleted, second.done) == (3, False)
    last = await prune_batch(db, cutoff, second.last_id, limit=3)
    # Reached the first "new" (the batch read two of them): the rest is newer, done.
    assert (last.deleted, last.done) == (1, True)
    assert await remaining(db) == new
    # The whole pass in batches of two does the same from scratch.
    for i in range(5):
        await resolved_and_processed(db, clock, f"more{i}")
    clock.advance(days=31)
    metrics = Metrics()
    await InboxPruner(db, RETENTION, metrics, clock, rest=0, batch=2).prune()
    assert await remaining(db) == []
    assert metrics.registry.get_sample_value("ballast_inbox_pruned_total") == 9


async def test_two_replicas_pruning_at_once_delete_each_state_once(
    db: Database, clock: Clock
) -> None:
    for i in range(40):
        await store(db, clock, alert(f"a{i}", AlertStatus.RESOLVED, clock()))
    async with db.transaction() as session:
        await session.execute(
            update(InboxAlert).values(processed_at=clock(), outcome=AlertOutcome.RESOLVED)
        )
    clock.advance(days=31)
    one, other = Metrics(), Metrics()
    await asyncio.gather(
        InboxPruner(db, RETENTION, one, clock, rest=0, batch=3).prune(),
        InboxPruner(db, RETENTION, other, clock, rest=0, batch=5).prune(),
    )
    assert await remaining(db) == []
    counted = [m.registry.get_sample_value("ballast_inbox_pruned_total") for m in (one, other)]
    assert sum(c or 0 for c in counted) == 40, counted


async def test_the_delete_never_takes_an_unprocessed_row(db: Database, clock: Clock) -> None:
    """The DELETE checks ``processed_at`` again, in its own statement: whatever a batch read
    before, a row is only ever deleted processed."""
    await store(db, clock, alert("x", AlertStatus.RESOLVED, clock()))
    async with db.sessions() as session:
        (row_id,) = (await session.scalars(select(InboxAlert.id))).all()
    async with db.transaction() as session:
        connection = await session.connection()
        result = await connection.execute(inbox_retention._DELETE, {"ids": [row_id]})
        assert result.rowcount == 0
    assert await remaining(db) == [("x", "resolved")]


async def test_the_server_prunes_the_inbox_and_leaves_its_incidents_whole(
    make_harness: Any, clock: Clock
) -> None:
    h = await make_harness()
    assert h.services.pruner is not None  # on by default (30 days)
    assert "inbox-retention" in {task.get_name() for task in asyncio.all_tasks()}
    await h.post_fixture("alertmanager", AM / "firing-group-2-alerts.json")
    await h.post_fixture("alertmanager", AM / "firing-group-one-resolved.json")
    await h.settle()
    (incident,) = (await h.client.get("/api/v1/incidents")).json()["incidents"]
    url = f"/api/v1/incidents/{incident['id']}"
    before = (await h.client.get(url)).json()
    clock.advance(days=31)
    await h.services.pruner.prune()
    # 2f37… fired and resolved: gone; the other two fire on, with no resolve stored: kept.
    assert await remaining(h.services.db) == [
        ("d1ed38e55b38e745", "firing"),
        ("7f70d69a70d4807e", "firing"),
    ]
    after = (await h.client.get(url)).json()
    assert after["alerts"] == before["alerts"]
    assert after["timeline"] == before["timeline"]
    # Alertmanager's resend of what still fires stays a duplicate.
    again = await h.post_fixture("alertmanager", AM / "firing-group-one-resolved.json")
    assert again.json()["duplicates"] == 2


async def test_retention_null_keeps_every_state(make_harness: Any) -> None:
    h = await make_harness(BallastConfig(inbox=InboxConfig(retention=None)))
    assert h.services.pruner is None
    assert "inbox-retention" not in {task.get_name() for task in asyncio.all_tasks()}
