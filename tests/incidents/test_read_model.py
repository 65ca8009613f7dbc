"""The read models read a stored row field by field (``from_attributes``), as the API's JSON.

Pinned on SQLite, read back from the database: one incident (its phases derived from the
row's timestamps, ``mitigated_at`` included, which the summary does not show), one alert, one
timeline entry.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.incidents.read_model import AlertOut, IncidentSummary, TimelineOut
from bot.store import incidents as repo
from bot.store.database import Database
from bot.store.tables import Incident, IncidentAlert, TimelineEntry

T0 = datetime(2025, 3, 4, 3, 12, tzinfo=UTC)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'ballast.db'}")
    await database.migrate()
    yield database
    await database.close()


async def _stored(db: Database) -> tuple[Incident, IncidentAlert, TimelineEntry]:
    async with db.transaction() as session:
        incident = Incident(
            key="rb:checkout/high-error-rate|{}",
            open_key=None,
            runbook_id="checkout/high-error-rate",
            status="resolved",
            title="Checkout errors",
            severity="sev2",
            service="checkout",
            group_labels={"cluster": "eu-1"},
            alert_count=1,
            firing_count=0,
            detected_at=T0 - timedelta(minutes=2),
            opened_at=T0,
            acknowledged_at=T0 + timedelta(minutes=3),
            acknowledged_by="<@U1>",
            mitigated_at=T0 + timedelta(minutes=4),
            resolved_at=T0 + timedelta(minutes=10),
            resolved_by="alertmanager",
            reopen_count=1,
            updated_at=T0 + timedelta(minutes=10),
            runbook_revision="9fceb02d0ae598e95dc970b74767f19372d61af8",
        )
        session.add(incident)
        await session.flush()
        session.add(
            IncidentAlert(
                incident_id=incident.id,
                fingerprint="f1",
                status="resolved",
                starts_at=T0 - timedelta(minutes=2),
                ends_at=T0 + timedelta(minutes=9),
                labels={"alertname": "CheckoutErrors"},
                annotations={"summary": "5xx above 5%"},
                generator_url="http://prometheus/graph",
                source="alertmanager",
                first_seen_at=T0,
                last_seen_at=T0 + timedelta(minutes=9),
            )
        )
        repo.append_timeline(
            session,
            incident.id,
            at=T0,
            actor="ballast",
            kind="opened",
            summary="Opened",
            details={"runbook_id": "checkout/high-error-rate"},
        )
        incident_id = incident.id
    async with db.sessions() as session:
        [alert] = await repo.alerts_of(session, incident_id)
        [entry] = await repo.timeline_of(session, incident_id)
        return await repo.get(session, incident_id), alert, entry


async def test_read_models_of_stored_rows(db: Database) -> None:
    incident, alert, entry = await _stored(db)
    assert IncidentSummary.model_validate(incident).model_dump(mode="json") == {
        "id": incident.id,
        "runbook_id": "checkout/high-error-rate",
        "status": "resolved",
        "title": "Checkout errors",
        "severity": "sev2",
        "service": "checkout",
        "group_labels": {"cluster": "eu-1"},
        "alert_count": 1,
        "firing_count": 0,
        "opened_at": "2025-03-04T03:12:00Z",
        "detected_at": "2025-03-04T03:10:00Z",
        "acknowledged_at": "2025-03-04T03:15:00Z",
        "acknowledged_by": "<@U1>",
        "resolved_at": "2025-03-04T03:22:00Z",
        "resolved_by": "alertmanager",
        "reopen_count": 1,
        "runbook_revision": "9fceb02d0ae598e95dc970b74767f19372d61af8",
        "phases_seconds": {
            "detect": 120.0,
            "acknowledge": 180.0,
            "mitigate": 240.0,
            "resolve": 600.0,
        },
    }
    assert AlertOut.model_validate(alert).model_dump(mode="json") == {
        "fingerprint": "f1",
        "status": "resolved",
        "labels": {"alertname": "CheckoutErrors"},
        "annotations": {"summary": "5xx above 5%"},
        "starts_at": "2025-03-04T03:10:00Z",
        "ends_at": "2025-03-04T03:21:00Z",
        "generator_url": "http://prometheus/graph",
        "source": "alertmanager",
    }
    assert TimelineOut.model_validate(entry).model_dump(mode="json") == {
        "at": "2025-03-04T03:12:00Z",
        "actor": "ballast",
        "kind": "opened",
        "summary": "Opened",
        "details": {"runbook_id": "checkout/high-error-rate"},
    }
