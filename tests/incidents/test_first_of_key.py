"""A lone alert of a key the engine has not seen opens the key's first incident in one statement
(``bot.incidents.batch``, ``insert_first_of_key``), on SQLite and PostgreSQL; a key it has seen,
or one whose incidents it did not know of, goes the usual way. The guess's equality with the
usual path for every sequence of alerts is ``tests/incidents/test_engine_differential.py``'s
(it guesses on every batch of one key); here, which statements each case sends.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from bot.incidents.engine import IncidentEngine
from bot.incidents.seen_keys import SeenKeys
from bot.metrics import Metrics
from bot.store.tables import Incident
from tests.conftest import Clock, DatabaseUnderTest
from tests.execution.test_listener_skips import services_for, store_tool_failure
from tests.store.statements_sent import statements_sent

NEWEST_OF_KEY = "SELECT max(incidents.id)"


async def _process(services: Any, engine: IncidentEngine) -> list[str]:
    with statements_sent(services.db.engine) as statements:
        assert await engine.process_pending() == 1
    return statements


def _engine(services: Any, clock: Clock, seen: SeenKeys) -> IncidentEngine:
    return IncidentEngine(
        services.db, services.catalog, Metrics(), clock=clock, seen_keys=seen, lanes=1
    )


def _first_of_key(statement: str) -> bool:
    return statement.startswith("INSERT INTO incidents") and "NOT (EXISTS" in statement


async def _incidents(services: Any) -> list[tuple[str, str]]:
    async with services.db.sessions() as session:
        rows = await session.execute(select(Incident.key, Incident.status).order_by(Incident.id))
        return [(key, status) for key, status in rows]


async def test_a_new_keys_lone_alert_opens_its_incident_in_one_statement(
    test_database: DatabaseUnderTest, clock: Clock
) -> None:
    services = services_for(test_database, clock)
    await services.db.migrate()
    seen = SeenKeys()
    engine = _engine(services, clock, seen)

    await store_tool_failure(services, clock, tool="lookup")
    first = await _process(services, engine)
    assert [s for s in first if _first_of_key(s)], first
    assert not [s for s in first if s.startswith(NEWEST_OF_KEY)], first
    assert len([s for s in first if s.startswith("INSERT INTO incidents")]) == 1, first
    [(key, status)] = await _incidents(services)
    assert status == "triggered"
    assert not seen.fresh(key)

    # The same key again (its incident open, the key seen): the usual reads, no guess.
    clock.advance(minutes=1)
    await store_tool_failure(services, clock, tool="lookup")
    services_statements = await _process(services, engine)
    assert not [s for s in services_statements if _first_of_key(s)], services_statements
    assert [s for s in services_statements if s.startswith(NEWEST_OF_KEY)], services_statements
    assert await _incidents(services) == [(key, "triggered")]
    await services.db.close()


async def test_a_key_with_incidents_the_engine_did_not_know_goes_the_usual_way(
    test_database: DatabaseUnderTest, clock: Clock
) -> None:
    """Another engine (a replica, an earlier process) opened the key's incident: this one's
    guess inserts nothing, and the alert joins the open incident."""
    services = services_for(test_database, clock)
    await services.db.migrate()
    await store_tool_failure(services, clock, tool="lookup")
    await _process(services, _engine(services, clock, SeenKeys()))

    clock.advance(minutes=1)
    await store_tool_failure(services, clock, tool="lookup")
    statements = await _process(services, _engine(services, clock, SeenKeys()))
    [guess] = [s for s in statements if _first_of_key(s)]
    after = statements[statements.index(guess) :]
    assert [s for s in after if s.startswith(NEWEST_OF_KEY)], statements
    assert not [s for s in after[1:] if s.startswith("INSERT INTO incidents")], statements
    async with services.db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Incident)) == 1
        incident = await session.scalar(select(Incident))
    assert incident is not None
    assert incident.alert_count == 1  # the same alert (fingerprint), seen again
    await services.db.close()


def test_seen_keys_forget_the_least_recently_seen_first() -> None:
    seen = SeenKeys(limit=2)
    assert seen.fresh("a")
    seen.saw(["a", "b"])
    assert not seen.fresh("a")
    assert not seen.fresh("b")
    seen.saw(["a"])  # a is now the most recent
    seen.saw(["c"])
    assert seen.fresh("b")
    assert not seen.fresh("a")
    assert not seen.fresh("c")
