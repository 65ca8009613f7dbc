"""The batched engine against the per-alert one: same alerts in, same rows out.

Hypothesis draws a sequence of steps (webhook batches of alerts that repeat, resolve, re-fire,
arrive late or out of order, across runbook and triage keys; the clock moving inside and
outside the re-open window; incidents acknowledged and resolved by hand) and a batch size. The
sequence goes to an engine on the per-alert path and to one on the batched path, each on a
database of its own, emptied before every example; after every step the two databases must hold
the same incidents, incident alerts, timelines, escalation timers and inbox outcomes (ids
included), and the two engines must have published the same changes.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text

from bot.incidents import operations
from bot.incidents.changes import AlertSnapshot, IncidentChange, Opened
from bot.incidents.engine import IncidentEngine
from bot.incidents.seen_keys import AlwaysFresh
from bot.intake.alert import Alert, AlertBatch, AlertSource, AlertStatus
from bot.metrics import Metrics
from bot.runbooks.catalog import LiveCatalog
from bot.runbooks.loader import load_catalog
from bot.runbooks.snapshot import Revision
from bot.store import inbox
from bot.store import incidents as repo
from bot.store.database import Database
from bot.store.tables import InboxAlert, Incident, IncidentAlert, TimelineEntry, Timer
from tests.conftest import Clock, _database

RUNBOOKS = Path(__file__).resolve().parents[1] / "api" / "runbooks"
T0 = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)
TABLES = ["timers", "timeline", "incident_alerts", "executions", "incidents", "inbox_alerts"]

# A runbook whose title cannot render for alerts without a ``host`` label (title_fallback
# entries) and that escalates (timers scheduled on open and on every re-open).
EXTRA_RUNBOOK = """\
id: diff/disk-full
title: "Disk full on {{ labels.host }}"
service: storage
severity: sev3
owners: ["@storage-oncall"]
match:
  - alertname="DiskFull"
group_by: [service]
symptom: A disk is full.
business_impact: Writes fail.
escalation:
  - after: 5m
    notify: ["@storage-oncall"]
  - after: 30m
    notify: ["@storage-lead"]
"""


# Fingerprints stand for label sets, as the senders' do: (alertname, service, host label).
# LowGroundedness goes to a runbook grouped by service, DiskFull to the extra runbook, NodeDown
# to no runbook (triage, keyed by alertname and service); several share a key.
IDENTITIES = [
    ("LowGroundedness", "support-assistant", False),
    ("LowGroundedness", "support-assistant", False),
    ("LowGroundedness", "support-bot", False),
    ("DiskFull", "support-bot", False),
    ("DiskFull", "support-bot", True),
    ("NodeDown", "", False),
    ("NodeDown", "support-bot", False),
]


def make_alert(identity: int, status: str, minute: int) -> Alert:
    name, service, host = IDENTITIES[identity]
    return Alert(
        fingerprint=f"fp{identity}",
        status=AlertStatus(status),
        labels={"alertname": name, "service": service, **({"host": "h1"} if host else {})},
        starts_at=T0 + timedelta(minutes=minute),
        ends_at=T0 + timedelta(minutes=minute + 5) if status == "resolved" else None,
        source=AlertSource.ALERTMANAGER,
    )


alerts = st.builds(
    make_alert,
    st.integers(0, len(IDENTITIES) - 1),
    st.sampled_from(["firing", "firing", "resolved"]),
    st.sampled_from([0, 1, 7]),
)
steps = st.lists(
    st.one_of(
        st.tuples(st.just("send"), st.lists(alerts, min_size=1, max_size=8), st.integers(0, 2)),
        st.tuples(st.just("advance"), st.sampled_from([0, 1, 4, 15]), st.just(0)),
        st.tuples(st.just("resolve"), st.integers(0, 3), st.just(0)),
        st.tuples(st.just("ack"), st.integers(0, 3), st.just(0)),
    ),
    min_size=1,
    max_size=25,
)

# Every rare path at least once, whatever hypothesis draws: a resolve that resolves the incident,
# a re-open with a re-fire, a batch that opens, resolves and re-opens one key, a resolve landing
# in an incident resolved by hand, a late firing (stale), a resolve for no incident, a new
# incident after the window.
SCRIPTED: list[tuple[str, Any, int]] = [
    ("send", [make_alert(0, "firing", 0)], 0),
    ("send", [make_alert(0, "resolved", 0)], 0),
    ("advance", 1, 0),
    ("send", [make_alert(0, "firing", 7), make_alert(3, "firing", 0)], 1),
    (
        "send",
        [
            make_alert(2, "firing", 0),
            make_alert(2, "resolved", 0),
            make_alert(2, "firing", 1),
            make_alert(1, "firing", 0),
        ],
        0,
    ),
    ("ack", 0, 0),
    ("resolve", 0, 0),
    ("send", [make_alert(0, "resolved", 7), make_alert(5, "resolved", 0)], 0),
    ("send", [make_alert(6, "resolved", 0)], 0),
    ("send", [make_alert(6, "firing", 0), make_alert(4, "firing", 1)], 0),
    ("advance", 15, 0),
    ("send", [make_alert(0, "firing", 1), make_alert(3, "resolved", 0)], 0),
]

# A resolve with nothing open goes to the newest incident holding its alert, which may be one
# the same batch gave the alert (and resolved), not the older one the database knows.
HELD_IN_BATCH: list[tuple[str, Any, int]] = [
    ("send", [make_alert(0, "firing", 0)], 0),
    ("send", [make_alert(0, "resolved", 0)], 0),
    ("advance", 15, 0),
    (
        "send",
        [make_alert(0, "firing", 7), make_alert(0, "resolved", 8), make_alert(0, "resolved", 1)],
        0,
    ),
]


class Recorder:
    """A change listener that keeps what it heard.

    A change that carries the new incident as the commit left it (``opened``: the auto
    mitigator runs from it instead of reading) is compared, as it is heard (right after its
    batch's commit, before the next batch), with what that read would have returned.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self.heard: list[tuple[int, list[str], list[str]]] = []
        self.opened_checked = 0
        self.opened_wrong: list[tuple[int, Any, Any]] = []

    async def incidents_changed(self, changes: list[IncidentChange]) -> None:
        for change in changes:
            kinds = sorted(str(kind) for kind in change.kinds)
            self.heard.append((change.incident_id, kinds, [n.text for n in change.notes]))
            if change.opened is not None:
                await self._check(change.incident_id, change.opened)

    async def _check(self, incident_id: int, opened: Opened) -> None:
        async with self.db.sessions() as session:
            incident = await repo.get(session, incident_id)
            first = await repo.first_alert_of(session, incident_id)
        assert first is not None
        read = Opened(incident.status, incident.runbook_id, AlertSnapshot.of(first))
        self.opened_checked += 1
        if read != opened:
            self.opened_wrong.append((incident_id, read, opened))


class Side:
    """One engine and its database."""

    def __init__(self, db: Database, clock: Clock, catalog: LiveCatalog, batched: bool) -> None:
        self.db = db
        self.recorder = Recorder(db)
        self.clock = clock
        self.catalog = catalog
        self.batched = batched
        self.engine = self._engine(1)

    def _engine(self, batch_size: int) -> IncidentEngine:
        return IncidentEngine(
            self.db,
            self.catalog,
            Metrics(),
            clock=self.clock,
            listeners=[self.recorder],
            batch_size=batch_size,
            # The per-alert path's SQLite budget would end transactions at different rows in
            # the two engines (new incidents would then get their ids in another order).
            sqlite_transaction_budget=3600.0,
            batched=self.batched,
            # Every batch of one key first tries the key's first incident in one statement
            # (bot.incidents.batch): that guess, right or wrong, must change nothing.
            seen_keys=AlwaysFresh() if self.batched else None,
            # One batch at a time: with two in flight on PostgreSQL, new incidents get their
            # ids, and listeners hear batches, in the order the transactions run.
            lanes=1,
        )

    async def reset(self, batch_size: int) -> None:
        async with self.db.transaction() as session:
            if self.db.is_sqlite:
                for table in TABLES:
                    await session.execute(text(f"DELETE FROM {table}"))
                has_sequence = await session.scalar(
                    text("SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_sequence'")
                )
                if has_sequence:
                    await session.execute(text("DELETE FROM sqlite_sequence"))
            else:
                await session.execute(
                    text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE")
                )
        self.recorder.heard.clear()
        self.engine = self._engine(batch_size)

    async def send(self, batch: list[Alert], truncated: int) -> None:
        async with self.db.transaction() as session:
            await inbox.store_batch(
                session,
                AlertBatch(AlertSource.ALERTMANAGER, batch, truncated_alerts=truncated),
                self.clock(),
            )
        await self.engine.process_pending()

    async def open_ids(self) -> list[int]:
        async with self.db.sessions() as session:
            query = select(Incident.id).where(Incident.status != "resolved").order_by(Incident.id)
            return list((await session.scalars(query)).all())

    async def snapshot(self) -> dict[str, Any]:
        async with self.db.sessions() as session:

            async def rows(model: Any, order: Any, skip: tuple[str, ...] = ()) -> list[Any]:
                columns = [c for c in model.__table__.columns if c.name not in skip]
                result = await session.execute(select(*columns).order_by(*order))
                return [tuple(row) for row in result]

            return {
                "incidents": await rows(Incident, [Incident.id]),
                "alerts": await rows(
                    IncidentAlert,
                    [IncidentAlert.incident_id, IncidentAlert.fingerprint],
                    skip=("id",),
                ),
                "timeline": await rows(TimelineEntry, [TimelineEntry.id]),
                "timers": await rows(Timer, [Timer.dedup_key], skip=("id",)),
                "inbox": await rows(InboxAlert, [InboxAlert.id]),
                "changes": list(self.recorder.heard),
                "opened_wrong": list(self.recorder.opened_wrong),
            }


@pytest.mark.parametrize(
    "database_kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_batched_engine_equals_per_alert_engine(database_kind: str, tmp_path: Path) -> None:
    (tmp_path / "runbooks").mkdir()
    for source in RUNBOOKS.glob("*.yaml"):
        (tmp_path / "runbooks" / source.name).write_text(source.read_text())
    (tmp_path / "runbooks" / "disk-full.yaml").write_text(EXTRA_RUNBOOK)
    load = load_catalog([tmp_path / "runbooks"])
    assert load.catalog is not None, load.diagnostics
    # Labelled with a git commit (as runbooks.git does), so both paths must record the
    # incidents' runbook_revision alike.
    catalog = LiveCatalog(load.catalog.at_revision(Revision("c0ffee" * 6 + "c0de", tmp_path)))
    (tmp_path / "old").mkdir()
    (tmp_path / "new").mkdir()
    with (
        _database(database_kind, tmp_path / "old") as old_db,
        _database(database_kind, tmp_path / "new") as new_db,
        asyncio.Runner() as runner,
    ):
        clock = Clock(T0)
        old = Side(old_db.make(), clock, catalog, batched=False)
        new = Side(new_db.make(), clock, catalog, batched=True)
        runner.run(old.db.migrate())
        runner.run(new.db.migrate())
        kinds_seen: set[str] = set()

        @settings(
            max_examples=100 if database_kind == "sqlite" else 50,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(plan=steps, batch_size=st.integers(1, 9))
        @example(plan=SCRIPTED, batch_size=3)
        @example(plan=SCRIPTED, batch_size=9)
        @example(plan=HELD_IN_BATCH, batch_size=3)
        def same(plan: list[tuple[str, Any, int]], batch_size: int) -> None:
            async def run() -> None:
                clock.now = T0 + timedelta(minutes=10)
                await old.reset(batch_size)
                await new.reset(batch_size)
                for number, (step, value, extra) in enumerate(plan):
                    if step == "send":
                        await old.send(value, extra)
                        await new.send(value, extra)
                    elif step == "advance":
                        clock.advance(minutes=value)
                    else:
                        ids = await old.open_ids()
                        if not ids:
                            continue
                        incident_id = ids[value % len(ids)]
                        for side in (old, new):
                            async with side.db.transaction() as session:
                                if step == "resolve":
                                    await operations.resolve(session, incident_id, "U1", clock())
                                else:
                                    await operations.acknowledge(
                                        session, incident_id, "U1", clock()
                                    )
                    expected, got = await old.snapshot(), await new.snapshot()
                    for part in expected:
                        assert got[part] == expected[part], (number, step, part)
                    kinds_seen.update(row[4] for row in expected["timeline"])

            runner.run(run())

        same()
        # The batched engine's changes carried their new incidents, all checked above.
        assert new.recorder.opened_checked > 0
        runner.run(old.db.close())
        runner.run(new.db.close())
    # Else the examples never reached the paths that differ most between the two engines.
    for kind in (
        "opened",
        "reopened",
        "alert_refiring",
        "alert_resolved",
        "resolved",
        "title_fallback",
    ):
        assert kind in kinds_seen, kind
