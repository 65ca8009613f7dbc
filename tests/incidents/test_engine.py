"""The incident engine on a real database: order tolerance, re-opening, replicas."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from bot.incidents.engine import IncidentEngine
from bot.intake.alert import Alert, AlertBatch, AlertSource, AlertStatus
from bot.metrics import Metrics
from bot.runbooks.catalog import LiveCatalog
from bot.runbooks.loader import load_catalog
from bot.store import inbox
from bot.store import incidents as repo
from bot.store.database import Database
from tests.conftest import Clock, DatabaseUnderTest

RUNBOOKS = Path(__file__).resolve().parents[1] / "api" / "runbooks"
T0 = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)


def alert(
    fingerprint: str,
    status: str = "firing",
    starts_at: datetime = T0,
    alertname: str = "LowGroundedness",
    service: str = "support-assistant",
) -> Alert:
    return Alert(
        fingerprint=fingerprint,
        status=AlertStatus(status),
        labels={"alertname": alertname, "service": service},
        starts_at=starts_at,
        ends_at=starts_at + timedelta(minutes=5) if status == "resolved" else None,
        source=AlertSource.ALERTMANAGER,
    )


class Rig:
    def __init__(self, db: Database, clock: Clock) -> None:
        load = load_catalog([RUNBOOKS])
        assert load.catalog is not None, load.diagnostics
        self.db = db
        self.clock = clock
        self.engine = IncidentEngine(db, LiveCatalog(load.catalog), Metrics(), clock=clock)

    async def send(self, *alerts: Alert, truncated: int = 0) -> None:
        batch = AlertBatch(
            source=AlertSource.ALERTMANAGER, alerts=list(alerts), truncated_alerts=truncated
        )
        async with self.db.transaction() as session:
            await inbox.store_batch(session, batch, self.clock())
        await self.engine.process_pending()

    async def incidents(self) -> list[Any]:
        async with self.db.sessions() as session:
            return list(reversed(await repo.list_incidents(session)))

    async def kinds(self, incident_id: int) -> list[str]:
        async with self.db.sessions() as session:
            return [e.kind for e in await repo.timeline_of(session, incident_id)]


@pytest.fixture
async def rig(test_database: DatabaseUnderTest, clock: Clock) -> Any:
    db = test_database.make()
    await db.migrate()
    yield Rig(db, clock)
    await db.close()


async def test_late_firing_after_resolve_is_stale(rig: Rig) -> None:
    """A retried 'firing' that arrives after the resolve of the same alert opens nothing."""
    await rig.send(alert("a", "resolved"))
    await rig.send(alert("a", "firing"))
    assert await rig.incidents() == []


async def test_the_claim_tells_which_firing_rows_are_stale(rig: Rig, clock: Clock) -> None:
    """In one batch: a firing row whose resolve is stored (the resolve in the same batch, and
    one from an earlier batch) is stale, another is not; the pass reads the inbox in one
    statement, its claim (issue 16: no round trip of its own for the stale check)."""
    await rig.send(alert("old", "resolved", alertname="Old"))
    async with rig.db.transaction() as session:
        for sent in (
            [alert(name, alertname=name.title()) for name in ("old", "both", "fresh")],
            [alert("both", "resolved", alertname="Both")],
        ):
            batch = AlertBatch(source=AlertSource.ALERTMANAGER, alerts=sent)
            await inbox.store_batch(session, batch, clock())
    reads: list[str] = []

    def statement(conn: Any, cursor: Any, text: str, *args: Any) -> None:
        if text.lstrip().startswith("SELECT") and "FROM inbox_alerts" in text:
            reads.append(text)

    engine = rig.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", statement)
    try:
        assert await rig.engine.process_pending() == 4
    finally:
        event.remove(engine, "before_cursor_execute", statement)
    assert len(reads) == 1, reads
    # Each would open a triage incident of its own: only "fresh" was not stale.
    assert [incident.key.split("|")[0] for incident in await rig.incidents()] == ["triage:Fresh"]


async def test_flapping_alert_reopens_within_window(rig: Rig, clock: Clock) -> None:
    await rig.send(alert("a"))
    clock.advance(minutes=5)
    await rig.send(alert("a", "resolved"))
    [first] = await rig.incidents()
    assert first.status == "resolved"

    clock.advance(minutes=3)  # inside the default 10 minute window
    await rig.send(alert("a", starts_at=T0 + timedelta(minutes=8)))
    [again] = await rig.incidents()
    assert again.id == first.id
    assert (again.status, again.reopen_count, again.firing_count) == ("triggered", 1, 1)
    kinds = await rig.kinds(again.id)
    assert kinds[-2:] == ["reopened", "alert_refiring"]

    clock.advance(minutes=2)
    await rig.send(alert("a", "resolved", starts_at=T0 + timedelta(minutes=8)))
    clock.advance(minutes=30)  # outside the window: a new incident
    await rig.send(alert("a", starts_at=T0 + timedelta(minutes=40)))
    incidents = await rig.incidents()
    assert [(i.id == first.id, i.status) for i in incidents] == [
        (True, "resolved"),
        (False, "triggered"),
    ]


async def test_older_occurrence_never_overrides_newer(rig: Rig) -> None:
    await rig.send(alert("a", starts_at=T0 + timedelta(minutes=10)))
    await rig.send(alert("a", "resolved", starts_at=T0))  # resolve of an older occurrence
    [incident] = await rig.incidents()
    assert (incident.status, incident.firing_count) == ("triggered", 1)


async def test_manual_resolve_then_repeat_notification_opens_nothing(rig: Rig) -> None:
    from bot.incidents import operations

    await rig.send(alert("a"))
    [incident] = await rig.incidents()
    async with rig.db.transaction() as session:
        await operations.resolve(session, incident.id, "U1", rig.clock())
    await rig.send(alert("a"))  # Alertmanager's repeat_interval resend
    assert [i.status for i in await rig.incidents()] == ["resolved"]


async def test_group_by_splits_incidents(rig: Rig) -> None:
    await rig.send(
        alert("a", service="support-assistant"),
        alert("b", service="support-bot"),
        alert("c", service="support-bot"),
    )
    incidents = await rig.incidents()
    assert [(i.group_labels, i.alert_count) for i in incidents] == [
        ({"service": "support-assistant"}, 1),
        ({"service": "support-bot"}, 2),
    ]


async def test_unmatched_alerts_grouped_per_alertname_and_service(rig: Rig) -> None:
    await rig.send(
        alert("a", alertname="DiskFull", service="x"),
        alert("b", alertname="DiskFull", service="y"),
        alert("c", alertname="NodeDown", service="y"),
        alert("d", alertname="NodeDown", service="y"),
        alert("e", alertname="NodeDown", service=""),
    )
    incidents = await rig.incidents()
    assert sorted((i.key, i.service, i.alert_count) for i in incidents) == [
        ('triage:DiskFull|{"service": "x"}', "x", 1),
        ('triage:DiskFull|{"service": "y"}', "y", 1),
        ("triage:NodeDown", None, 1),
        ('triage:NodeDown|{"service": "y"}', "y", 2),
    ]


async def recount(db: Database, incident_id: int) -> tuple[int, int]:
    """(all, firing) alerts of an incident, counted from its rows."""
    from sqlalchemy import func, select

    from bot.store.tables import IncidentAlert

    async with db.sessions() as session:
        rows = (
            await session.execute(
                select(IncidentAlert.status, func.count())
                .where(IncidentAlert.incident_id == incident_id)
                .group_by(IncidentAlert.status)
            )
        ).all()
    by_status = dict(rows)
    return sum(by_status.values()), by_status.get("firing", 0)


@pytest.mark.parametrize("manual_resolves", [False, True])
@pytest.mark.parametrize("seed", range(4))
async def test_running_counts_always_equal_a_recount(
    rig: Rig, clock: Clock, seed: int, manual_resolves: bool
) -> None:
    """The engine counts alerts by their transitions; whatever arrives, in whatever order and
    batches (repeats, late firings, resolves, re-fires, re-opened incidents, incidents resolved
    by hand while their alerts fire), each incident's counts equal a recount of its alerts
    after every batch."""
    from bot.incidents import operations

    rng = random.Random(seed)
    starts = [T0 + timedelta(minutes=m) for m in (0, 1, 7)]
    for _ in range(25):
        batch = [
            alert(
                f"fp{rng.randrange(6)}",
                rng.choice(["firing", "firing", "resolved"]),
                starts_at=rng.choice(starts),
                service=rng.choice(["support-assistant", "billing-assistant"]),
            )
            for _ in range(rng.randrange(1, 6))
        ]
        await rig.send(*batch)
        clock.advance(minutes=rng.choice([0, 1, 4, 15]))
        incidents = await rig.incidents()
        open_ones = [i for i in incidents if i.status != "resolved"]
        if manual_resolves and open_ones and rng.random() < 0.3:
            # Resolved by hand while alerts still fire: their resolves still move its counts.
            async with rig.db.transaction() as session:
                await operations.resolve(session, rng.choice(open_ones).id, "U1", clock())
            incidents = await rig.incidents()
        for incident in incidents:
            counted = (incident.alert_count, incident.firing_count)
            assert counted == await recount(rig.db, incident.id), (seed, incident.id)
            if incident.status != "resolved":
                assert incident.firing_count > 0 or incident.alert_count == 0
    assert incidents, "the sequence opened no incident: the test would prove nothing"
    if manual_resolves:
        late = [i for i in incidents if i.status == "resolved" and i.resolved_by == "U1"]
        assert late, "no incident was resolved by hand: the test would prove nothing"


async def _process_counting_commits(
    db: Database, engine: IncidentEngine, alerts: list[Alert], clock: Clock
) -> tuple[int, int]:
    """Store ``alerts``, process them all; returns (processed, transactions committed)."""
    from sqlalchemy import event

    async with db.transaction() as session:
        await inbox.store_batch(
            session, AlertBatch(source=AlertSource.ALERTMANAGER, alerts=alerts), clock()
        )
    commits = 0

    def count(_: object) -> None:
        nonlocal commits
        commits += 1

    event.listen(db.engine.sync_engine, "commit", count)
    try:
        processed = await engine.process_pending()
    finally:
        event.remove(db.engine.sync_engine, "commit", count)
    return processed, commits


async def test_sqlite_transactions_stop_at_their_budget_and_lose_nothing(
    test_database: DatabaseUnderTest, clock: Clock
) -> None:
    """With no time budget at all, each SQLite transaction processes one row (and commits, so
    webhooks get the write lock back), yet one process_pending still processes every row.
    PostgreSQL holds no database-wide lock and keeps its full batches."""
    db = test_database.make()
    await db.migrate()
    load = load_catalog([RUNBOOKS])
    assert load.catalog is not None, load.diagnostics
    engine = IncidentEngine(
        db,
        LiveCatalog(load.catalog),
        Metrics(),
        clock=clock,
        batch_size=50,
        sqlite_transaction_budget=0.0,
    )
    alerts = [alert(f"fp{i}", service=f"support-{i % 3}") for i in range(12)]
    processed, commits = await _process_counting_commits(db, engine, alerts, clock)
    assert processed == 12
    assert commits == (12 if db.is_sqlite else 1)
    async with db.sessions() as session:
        incidents = await repo.list_incidents(session)
        assert await inbox.count_unprocessed(session) == 0
    assert sorted(i.alert_count for i in incidents) == [4, 4, 4]
    await db.close()


async def test_sqlite_transactions_never_shrink_below_their_floor(
    test_database: DatabaseUnderTest, clock: Clock
) -> None:
    """A budget that even the smallest transaction outlasts (a slow machine: the dozen
    statements of any batch take longer than it) must not shrink batches to one row each,
    where the engine spends all its time on per-transaction statements: they stay at
    MIN_SQLITE_ROWS."""
    from bot.incidents.engine import MIN_SQLITE_ROWS

    db = test_database.make()
    await db.migrate()
    load = load_catalog([RUNBOOKS])
    assert load.catalog is not None, load.diagnostics
    engine = IncidentEngine(
        db, LiveCatalog(load.catalog), Metrics(), clock=clock, sqlite_transaction_budget=1e-9
    )
    total = 2 * MIN_SQLITE_ROWS + 20
    alerts = [alert(f"fp{i}", service=f"support-{i % 3}") for i in range(total)]
    processed, commits = await _process_counting_commits(db, engine, alerts, clock)
    assert processed == total
    # SQLite: 50 + 50 + 20 rows; PostgreSQL has no budget and takes them in one.
    assert commits == (3 if db.is_sqlite else 1)
    async with db.sessions() as session:
        assert await inbox.count_unprocessed(session) == 0
    await db.close()


async def test_restart_resumes_unprocessed_inbox(
    test_database: DatabaseUnderTest, clock: Clock
) -> None:
    """Alerts committed but not processed (a crash after the 2xx) are processed on restart."""
    db = test_database.make()
    await db.migrate()
    batch = AlertBatch(source=AlertSource.ALERTMANAGER, alerts=[alert("a"), alert("b")])
    async with db.transaction() as session:
        await inbox.store_batch(session, batch, clock())
    await db.close()  # "crash": nothing processed

    db = test_database.make()
    await db.migrate()
    rig = Rig(db, clock)
    assert await rig.engine.process_pending() == 2
    assert await rig.engine.process_pending() == 0
    [incident] = await rig.incidents()
    assert incident.alert_count == 2
    await db.close()


@pytest.mark.postgres
async def test_two_replicas_process_each_alert_once(
    postgres_database: DatabaseUnderTest, clock: Clock
) -> None:
    """Two engines on one PostgreSQL, each with its own pool: SKIP LOCKED + unique open key."""
    dbs = [postgres_database.make(), postgres_database.make()]
    await dbs[0].migrate()
    rigs = [Rig(db, clock) for db in dbs]
    for rig in rigs:
        rig.engine._batch_size = 7  # many small batches, so the two interleave
    alerts = [
        alert(f"fp{i}", service=f"support-{i % 5}", starts_at=T0 + timedelta(seconds=i))
        for i in range(300)
    ]
    async with dbs[0].transaction() as session:
        await inbox.store_batch(
            session, AlertBatch(source=AlertSource.ALERTMANAGER, alerts=alerts), clock()
        )
    done = await asyncio.gather(*(rig.engine.process_pending() for rig in rigs))
    assert sum(done) == 300
    incidents = await rigs[0].incidents()
    assert sorted(i.alert_count for i in incidents) == [60, 60, 60, 60, 60]
    for incident in incidents:
        assert (incident.alert_count, incident.firing_count) == await recount(dbs[0], incident.id)
    async with dbs[0].sessions() as session:
        for incident in incidents:
            kinds = [e.kind for e in await repo.timeline_of(session, incident.id)]
            assert kinds.count("opened") == 1
            assert kinds.count("alert_firing") == 60
    for db in dbs:
        await db.close()


async def test_resolve_after_manual_resolve_lands_in_that_incident(rig: Rig) -> None:
    from bot.incidents import operations

    await rig.send(alert("a"), alert("b"))
    [incident] = await rig.incidents()
    async with rig.db.transaction() as session:
        await operations.resolve(session, incident.id, "U1", rig.clock())
    await rig.send(alert("a", "resolved"))
    await rig.send(alert("never-held", "resolved"))  # same key, an alert it never held
    [incident] = await rig.incidents()
    assert (incident.status, incident.alert_count, incident.firing_count) == ("resolved", 2, 1)
    assert incident.resolved_by == "U1"
    assert (await rig.kinds(incident.id))[-2:] == ["resolved", "alert_resolved"]
    assert await recount(rig.db, incident.id) == (2, 1)


async def test_a_message_reads_a_bounded_sample_of_a_storm_incident(
    test_database: DatabaseUnderTest, clock: Clock
) -> None:
    """A storm incident's message reads its first alert (what params and links are rendered
    from), then firing ones before resolved ones, at most the limit: not its thousands."""
    db = test_database.make()
    await db.migrate()
    rig = Rig(db, clock)
    await rig.send(*(alert(f"fp{i}") for i in range(6)))
    await rig.send(alert("fp0", "resolved"), alert("fp1", "resolved"), alert("fp2", "resolved"))
    [incident] = await rig.incidents()
    async with db.sessions() as session:
        everything = await repo.alerts_of(session, incident.id)
        sample = await repo.alerts_sample(session, incident.id, 4)
        assert await repo.alerts_sample(session, incident.id, 0) == []
        whole = await repo.alerts_sample(session, incident.id, 100)
    assert [a.fingerprint for a in everything] == [f"fp{i}" for i in range(6)]
    assert [(a.fingerprint, a.status) for a in sample] == [
        ("fp0", "resolved"),
        ("fp3", "firing"),
        ("fp4", "firing"),
        ("fp5", "firing"),
    ]
    assert sorted(a.fingerprint for a in whole) == [a.fingerprint for a in everything]
    await db.close()
