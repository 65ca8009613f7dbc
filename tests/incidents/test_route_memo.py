"""``RouteMemo``: a remembered routing is always the routing worked out afresh."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.incidents import route_memo
from bot.incidents.engine import IncidentEngine
from bot.incidents.route_memo import MAX_REMEMBERED_CHARS, MEMO_SIZE, RouteMemo, route_in
from bot.incidents.routing_key import Routing
from bot.intake.alert import Alert, AlertBatch, AlertSource, AlertStatus
from bot.metrics import Metrics
from bot.runbooks.snapshot import Catalog
from bot.store import inbox
from bot.store import incidents as repo
from bot.store.database import Database
from tests.conftest import Clock
from tests.runbooks.test_catalog import runbook

T0 = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)

# Equality, inequality, regular expressions (one that matches the empty value, so an absent
# label matters), groups by labels no matcher names, and precedence between overlapping ones.
CATALOG = Catalog(
    [
        runbook("tools/any", 'alertname="ToolCallFailureRate"', group_by=["service", "tool"]),
        runbook("tools/web", 'alertname="ToolCallFailureRate"', 'tool="web_search"'),
        runbook(
            "tools/not-prod",
            'alertname="ToolCallFailureRate"',
            'env!="prod"',
            'tool=~"web.*|"',
            group_by=["region"],
        ),
        runbook("rag/stale", 'alertname=~"Retrieval.*"', 'severity!~"info|"'),
    ]
)
VALUES = st.sampled_from(
    ["", "ToolCallFailureRate", "RetrievalStale", "web_search", "web", "prod", "dev", "info", "x"]
)
NAMES = st.sampled_from(
    ["alertname", "service", "tool", "env", "severity", "region", "instance", "pod"]
)
LABELS = st.dictionaries(NAMES, VALUES, max_size=8)


class Counted:
    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.calls = 0

    def __call__(self, labels: dict[str, Any]) -> Routing:
        self.calls += 1
        return route_in(self.catalog, labels)


SHARED = RouteMemo(CATALOG, Counted(CATALOG))  # across examples: later ones find earlier ones


@settings(max_examples=500)
@given(LABELS)
def test_a_remembered_routing_is_the_routing_worked_out(labels: dict[str, str]) -> None:
    assert SHARED.route(labels) == route_in(CATALOG, labels)


def test_the_deciding_labels_are_the_ones_runbooks_name_and_the_triage_group() -> None:
    memo = RouteMemo(CATALOG, Counted(CATALOG))
    assert memo.names == ("alertname", "env", "region", "service", "severity", "tool")


def test_alerts_that_differ_only_in_other_labels_are_routed_once() -> None:
    counted = Counted(CATALOG)
    memo = RouteMemo(CATALOG, counted)
    labels = {"alertname": "ToolCallFailureRate", "service": "a", "tool": "t1", "env": "prod"}
    routings = [memo.route({**labels, "instance": f"pod-{n}"}) for n in range(100)]
    assert all(routing == route_in(CATALOG, labels) for routing in routings)
    assert counted.calls == 1
    memo.route({**labels, "tool": "t2"})
    assert counted.calls == 2


def test_an_absent_label_and_an_empty_one_are_told_apart() -> None:
    counted = Counted(CATALOG)
    memo = RouteMemo(CATALOG, counted)
    labels = {"alertname": "ToolCallFailureRate", "env": "dev"}
    assert memo.route(labels) == route_in(CATALOG, labels)
    assert memo.route({**labels, "tool": ""}) == route_in(CATALOG, {**labels, "tool": ""})
    assert counted.calls == 2


def test_values_that_are_not_strings_are_never_remembered() -> None:
    # (The wire models make every label a string; the memo does not count on it.)
    routed: list[dict[str, Any]] = []

    def route(labels: dict[str, Any]) -> Routing:
        routed.append(labels)
        return Routing("k", None, {})

    memo = RouteMemo(CATALOG, route)
    for value in (1, 1.0, True, None, ["a"], {"a": "b"}):
        labels: dict[str, Any] = {"alertname": "ToolCallFailureRate", "tool": value}
        memo.route(labels)
        memo.route(labels)
    assert len(routed) == 12
    assert memo._known == {}


def test_long_values_are_not_remembered_and_the_memo_stays_bounded(
    monkeypatch: Any,
) -> None:
    counted = Counted(CATALOG)
    memo = RouteMemo(CATALOG, counted)
    long = {"alertname": "ToolCallFailureRate", "service": "s" * (MAX_REMEMBERED_CHARS + 1)}
    memo.route(long)
    memo.route(long)
    assert counted.calls == 2
    monkeypatch.setattr(route_memo, "MEMO_SIZE", 10)
    for n in range(25):
        memo.route({"alertname": "ToolCallFailureRate", "service": f"s{n}"})
        assert len(memo._known) <= 10
    assert MEMO_SIZE >= 1000


class SwappableCatalog:
    """A LiveCatalog's ``current``, replaced as a reload would replace it."""

    def __init__(self, catalog: Catalog) -> None:
        self.current = catalog


async def test_the_engine_routes_with_the_catalog_that_is_current(
    db: Database, clock: Clock
) -> None:
    live = SwappableCatalog(
        Catalog([runbook("tools/any", 'alertname="ToolCallFailureRate"', group_by=["service"])])
    )
    engine = IncidentEngine(db, live, Metrics(), clock=clock)  # type: ignore[arg-type]

    async def send(fingerprint: str) -> None:
        alert = Alert(
            fingerprint=fingerprint,
            status=AlertStatus.FIRING,
            labels={"alertname": "ToolCallFailureRate", "service": "s", "instance": fingerprint},
            starts_at=T0,
            source=AlertSource.ALERTMANAGER,
        )
        async with db.transaction() as session:
            await inbox.store_batch(
                session, AlertBatch(source=AlertSource.ALERTMANAGER, alerts=[alert]), clock()
            )
        assert await engine.process_pending() == 1

    await send("f1")
    live.current = Catalog(
        [runbook("tools/other", 'alertname="ToolCallFailureRate"', group_by=["service"])]
    )
    await send("f2")
    async with db.sessions() as session:
        runbooks = sorted(i.runbook_id for i in await repo.list_incidents(session))
    assert runbooks == ["tools/any", "tools/other"]
