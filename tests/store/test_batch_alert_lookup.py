"""The batch reads an incident's alerts by exact (incident, fingerprint) pairs, one index probe
each (bot.store.incident_batch.alerts_of): on SQLite a JSON array of the pairs joined to the
UNIQUE index, on PostgreSQL two arrays unnested side by side (issue 16)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text

from bot.incidents.engine import IncidentEngine
from bot.intake.alert import Alert, AlertBatch, AlertSource, AlertStatus
from bot.metrics import Metrics
from bot.runbooks.catalog import LiveCatalog
from bot.runbooks.loader import load_catalog
from bot.store import inbox
from bot.store.database import Database
from bot.store.incident_batch import _ALERTS_OF_JSON, alerts_of, lock_incidents
from tests.conftest import Clock

RUNBOOKS = Path(__file__).resolve().parents[1] / "api" / "runbooks"
# Fingerprints are the sender's text: JSON's and SQL's special characters travel as data.
ODD = ['he said "stop"', "back\\slash", "it's", "[1, 2]", "naïve ✓", "x' OR '1'='1"]


def firing(fingerprint: str, alertname: str, clock: Clock, minutes: int = 0) -> Alert:
    return Alert(
        fingerprint=fingerprint,
        status=AlertStatus.FIRING,
        labels={"alertname": alertname, "service": "bench"},
        starts_at=clock() + timedelta(minutes=minutes),
        source=AlertSource.ALERTMANAGER,
    )


async def test_the_asked_pairs_and_nothing_else(db: Database, clock: Clock) -> None:
    load = load_catalog([RUNBOOKS])
    assert load.catalog is not None
    engine = IncidentEngine(db, LiveCatalog(load.catalog), Metrics(), clock=clock)
    # Three triage incidents; "shared" is a fingerprint both A and B hold.
    sent = [firing(fp, "A", clock) for fp in [*ODD, "shared"]]
    sent += [firing(fp, "B", clock, minutes=1) for fp in ("shared", "b1")]
    sent += [firing("c1", "C", clock)]
    async with db.transaction() as session:
        await inbox.store_batch(
            session, AlertBatch(source=AlertSource.ALERTMANAGER, alerts=sent), clock()
        )
    assert await engine.process_pending() == len(sent)

    async with db.transaction() as session:
        rows = await session.execute(text("SELECT key FROM incidents"))
        keys = {key.split("|")[0].removeprefix("triage:"): key for (key,) in rows}
        incidents = await lock_incidents(session, keys.values(), [])
        wanted = {(keys["A"], fp) for fp in [*ODD, "shared", "b1", "missing"]}
        wanted |= {(keys["B"], "shared"), (keys["C"], "shared")}
        found = await alerts_of(session, incidents, wanted)
    got = sorted((alert.incident.key, alert.fingerprint) for alert in found)
    # A's own alerts and B's "shared": not A's "b1" (B's), nor anything of C's.
    assert got == sorted({(keys["A"], fp) for fp in [*ODD, "shared"]} | {(keys["B"], "shared")})


async def test_sqlite_probes_the_unique_index_once_per_pair(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'plan.db'}")
    await db.migrate()
    try:
        async with db.engine.connect() as conn:
            sql = str(_ALERTS_OF_JSON.compile(conn.sync_connection))
            rows: Any = await conn.exec_driver_sql(
                "EXPLAIN QUERY PLAN " + sql, ('[[1, "a"], [2, "b"]]', 0, 1)
            )
            plan = [str(row[-1]) for row in rows]
        # The pairs are the outer loop; each is one lookup on both columns of the index.
        assert plan[0].startswith("SCAN wanted VIRTUAL TABLE"), plan
        assert "incident_alerts USING INDEX" in plan[1], plan
        assert "(incident_id=? AND fingerprint=?)" in plan[1], plan
    finally:
        await db.close()
