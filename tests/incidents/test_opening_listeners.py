"""Opening listeners hear the incidents a batch opens inside its transaction, before the
commit, and are told the fate of what they did: rolled back for an attempt the engine redid,
committed for the one that committed (issue 16: the first auto mitigation claimed and written
with the incident)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.incidents.changes import IncidentChange, OpeningFailed, OpeningListener
from bot.incidents.engine import IncidentEngine
from bot.metrics import Metrics
from bot.runbooks.catalog import LiveCatalog
from bot.runbooks.loader import load_catalog
from bot.store.tables import Incident
from tests.conftest import Clock, DatabaseUnderTest
from tests.incidents.test_engine import RUNBOOKS, Rig, alert


class Heard:
    def __init__(self, attempt: int, log: list[str]) -> None:
        self.attempt = attempt
        self.log = log

    def committed(self) -> None:
        self.log.append(f"committed {self.attempt}")

    def rolled_back(self) -> None:
        self.log.append(f"rolled back {self.attempt}")


class Listener:
    def __init__(self) -> None:
        self.log: list[str] = []
        self.seen: list[tuple[int, str | None, bool]] = []

    async def incidents_opening(
        self, session: AsyncSession, changes: Sequence[IncidentChange]
    ) -> Heard:
        for change in changes:
            assert change.opened is not None
            # Inside the batch's transaction: the incident it opened is there to read.
            row = await session.scalar(select(Incident).where(Incident.id == change.incident_id))
            self.seen.append((change.incident_id, change.runbook_id, row is not None))
        attempt = len([e for e in self.log if e.startswith("heard")]) + 1
        self.log.append(f"heard {attempt}")
        return Heard(attempt, self.log)


class FailsOnce:
    """A second listener whose first call fails as a lost lock would: the engine redoes the
    batch, after the first listener's work of that attempt was done."""

    def __init__(self) -> None:
        self.calls = 0

    async def incidents_opening(
        self, session: AsyncSession, changes: Sequence[IncidentChange]
    ) -> None:
        self.calls += 1
        if self.calls == 1:
            locked = sqlite3.OperationalError("database is locked")
            raise OperationalError("UPDATE incidents", None, locked)


async def rig_with(
    test_database: DatabaseUnderTest, clock: Clock, *opening: OpeningListener
) -> Rig:
    """The engine on a migrated test database, with these opening listeners."""
    db = test_database.make()
    await db.migrate()
    load = load_catalog([RUNBOOKS])
    assert load.catalog is not None
    rig = Rig(db, clock)
    rig.engine = IncidentEngine(
        db, LiveCatalog(load.catalog), Metrics(), clock=clock, opening=list(opening)
    )
    return rig


async def test_listeners_hear_new_incidents_in_the_transaction_and_its_fate(
    test_database: DatabaseUnderTest, clock: Clock
) -> None:
    listener, fails_once = Listener(), FailsOnce()
    rig = await rig_with(test_database, clock, listener, fails_once)
    await rig.send(alert("a"), alert("b", service="billing"))
    # The first attempt's work is rolled back, the second's committed: each told once.
    assert listener.log == ["heard 1", "heard 2", "rolled back 1", "committed 2"]
    assert fails_once.calls == 2
    ids = {incident.id for incident in await rig.incidents()}
    assert len(ids) == 2
    assert {incident_id for incident_id, _, _ in listener.seen[-2:]} == ids
    assert all(visible for _, _, visible in listener.seen)

    # An alert of an incident already open opens nothing: nothing heard.
    await rig.send(alert("c"))
    assert listener.log == ["heard 1", "heard 2", "rolled back 1", "committed 2"]
    await rig.db.close()


class FailsPartWay:
    """A listener that writes a row in the engine's transaction and then fails: with no
    savepoint, it tells the engine so (``OpeningFailed``)."""

    def __init__(self) -> None:
        self.calls = 0

    async def incidents_opening(
        self, session: AsyncSession, changes: Sequence[IncidentChange]
    ) -> None:
        self.calls += 1
        await session.execute(update(Incident).values(title="written by a failed listener"))
        raise OpeningFailed("injected: failed after a write")


async def test_a_failed_listener_has_the_batch_redone_without_listeners(
    test_database: DatabaseUnderTest, clock: Clock
) -> None:
    """The attempt in which a listener failed is rolled back whole (its write with it, the
    other listener's work told rolled back) and the batch is redone once, without any
    opening listener; its incidents are opened once."""
    listener, fails = Listener(), FailsPartWay()
    rig = await rig_with(test_database, clock, listener, fails)
    await rig.send(alert("a"), alert("b", service="billing"))
    assert listener.log == ["heard 1", "rolled back 1"]
    assert fails.calls == 1
    incidents = await rig.incidents()
    assert len(incidents) == 2
    assert all(i.title != "written by a failed listener" for i in incidents)

    # The next batch that opens one hears the listeners again (and is redone again).
    await rig.send(alert("c", service="search"))
    assert listener.log == ["heard 1", "rolled back 1", "heard 2", "rolled back 2"]
    assert fails.calls == 2
    assert len(await rig.incidents()) == 3
    await rig.db.close()
