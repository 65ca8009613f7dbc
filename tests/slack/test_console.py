"""The console says what Slack would have been told: every change of state at once, and an
incident's mere alert-count updates at most once per window, the last with the counts as they
are then (as the Slack outbox coalesces a pending update)."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

import pytest
from sqlalchemy import update

from bot.incidents.changes import ChangeKind, IncidentChange, Note
from bot.slack.console import ConsoleAnnouncer
from bot.store.database import Database
from bot.store.tables import Incident
from tests.rows import incident_row

T0 = datetime(2026, 12, 6, 4, 0, tzinfo=UTC)
WINDOW = 0.5


async def new_incident(db: Database, name: str) -> int:
    async with db.transaction() as session:
        incident = incident_row(
            f"rb:{name}|{{}}", T0, runbook_id=name, title=f"{name} is failing", service=None
        )
        session.add(incident)
        await session.flush()
        return incident.id


async def count_alerts(db: Database, incident_id: int, alerts: int) -> None:
    async with db.transaction() as session:
        await session.execute(
            update(Incident)
            .where(Incident.id == incident_id)
            .values(alert_count=alerts, firing_count=alerts)
        )


def change(incident_id: int, *kinds: ChangeKind, note: str | None = None) -> IncidentChange:
    return IncidentChange(
        incident_id, set(kinds), [Note(note)] if note else [], runbook_id="console"
    )


def lines(caplog: pytest.LogCaptureFixture, incident_id: int) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "ballast.console" and f"] #{incident_id} " in r.getMessage()
    ]


@pytest.fixture(autouse=True)
def console_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ballast.console")


async def printed_lines(
    caplog: pytest.LogCaptureFixture, incident_id: int, count: int
) -> list[str]:
    """The incident's lines once there are ``count`` of them (a minute at most)."""
    for _ in range(600):
        if len(lines(caplog, incident_id)) >= count:
            break
        await asyncio.sleep(0.1)
    return lines(caplog, incident_id)


async def test_a_storm_prints_its_opening_then_one_update_per_window_with_the_last_counts(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    console = ConsoleAnnouncer(db, update_every=WINDOW)
    storm, other = await new_incident(db, "storm"), await new_incident(db, "other")
    await console.incidents_changed([change(storm, ChangeKind.OPENED)])
    await count_alerts(db, storm, 21)
    for _ in range(20):  # twenty engine batches in the window, each with more alerts
        await console.incidents_changed([change(storm, ChangeKind.UPDATED)])
    # Another incident's first line is not held back by the storm's window.
    await console.incidents_changed([change(other, ChangeKind.UPDATED)])
    assert [line.split("]")[0] for line in lines(caplog, storm)] == ["[slack: would post"]
    assert len(lines(caplog, other)) == 1

    storm_lines = await printed_lines(caplog, storm, 2)
    assert len(storm_lines) == 2, storm_lines
    assert storm_lines[1].startswith("[slack: would update]")
    assert storm_lines[1].endswith("updated, 21/21 alerts firing"), storm_lines[1]

    # That line's window over and nothing held: the next update is printed as it comes.
    await asyncio.sleep(WINDOW * 1.5)
    await count_alerts(db, storm, 22)
    await console.incidents_changed([change(storm, ChangeKind.UPDATED)])
    assert len(lines(caplog, storm)) == 3
    assert lines(caplog, storm)[-1].endswith("22/22 alerts firing")
    await console.drain()
    assert len(lines(caplog, storm)) == 3


async def test_changes_of_state_and_notes_are_printed_at_once(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    console = ConsoleAnnouncer(db, update_every=60.0)
    incident = await new_incident(db, "state")
    await console.incidents_changed([change(incident, ChangeKind.OPENED)])
    await console.incidents_changed([change(incident, ChangeKind.UPDATED)])  # held back
    await console.incidents_changed([change(incident, note="disable_tool applied")])
    await console.incidents_changed([change(incident, ChangeKind.UPDATED, ChangeKind.STATUS)])
    await count_alerts(db, incident, 0)
    await console.incidents_changed([change(incident, ChangeKind.RESOLVED)])
    printed = lines(caplog, incident)
    assert len(printed) == 4, printed
    assert "disable_tool applied" in printed[1]
    assert "status,updated" in printed[2]
    assert "resolved, 0/0 alerts firing" in printed[3]
    # The held update was shown by the lines after it: nothing is left to print.
    await console.drain()
    assert len(lines(caplog, incident)) == 4


async def test_drain_prints_what_is_held_back_and_holds_nothing_after(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    console = ConsoleAnnouncer(db, update_every=60.0)
    incident = await new_incident(db, "held")
    await console.incidents_changed([change(incident, ChangeKind.OPENED)])
    await count_alerts(db, incident, 7)
    await console.incidents_changed([change(incident, ChangeKind.UPDATED)])
    assert len(lines(caplog, incident)) == 1
    await console.drain()
    printed = lines(caplog, incident)
    assert len(printed) == 2, printed
    assert printed[1].endswith("7/7 alerts firing"), printed
    await console.drain()  # twice is harmless
    assert len(lines(caplog, incident)) == 2
    # After it (the shutdown goes on), nothing is held back for a window.
    await console.incidents_changed([change(incident, ChangeKind.UPDATED)])
    assert len(lines(caplog, incident)) == 3
