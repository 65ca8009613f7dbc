"""Listeners of opened incidents skip, without a task or a read, the incidents they have
nothing to do for: no auto mitigation to run, no scorecard panel to snapshot. In a storm of
distinct triage incidents these were two reads per incident (issue 16)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from bot.app import build_services
from bot.config import BallastConfig
from bot.incidents.changes import ChangeKind, IncidentChange
from bot.intake.alert import Alert, AlertBatch, AlertSource, AlertStatus
from bot.settings import Settings
from bot.store import inbox
from tests.conftest import Clock, DatabaseUnderTest

RUNBOOKS = Path(__file__).parents[2] / "runbooks"
WITH_AUTO = "support-assistant/tool-failure-spike"  # two auto mitigations
WITHOUT_AUTO = "sales-copilot/refusal-rate-spike"  # manual and approval only
OWN_PANELS = "support-assistant/groundedness-drop"  # panels of its own


def opened(incident_id: int, runbook_id: str | None) -> IncidentChange:
    return IncidentChange(incident_id, {ChangeKind.OPENED}, runbook_id=runbook_id)


TOOL_FAILURE = {
    "alertname": "ToolCallFailureRate",
    "service": "support-assistant",
    "tool": "order_lookup",
    "env": "prod",
}


async def store_tool_failure(services: Any, clock: Clock, *, tool: str | None = None) -> None:
    """Store one firing alert of the tool-failure runbook (first auto mitigation: disable the
    tool) in the inbox, as a webhook would; ``tool``: another tool than TOOL_FAILURE's (a new
    incident of its own)."""
    alert = Alert(
        fingerprint="f1" if tool is None else f"f-{tool}",
        status=AlertStatus.FIRING,
        labels=TOOL_FAILURE if tool is None else {**TOOL_FAILURE, "tool": tool},
        starts_at=clock(),
        source=AlertSource.ALERTMANAGER,
    )
    async with services.db.transaction() as session:
        await inbox.store_batch(
            session, AlertBatch(source=AlertSource.ALERTMANAGER, alerts=[alert]), clock()
        )


def services_for(
    test_database: DatabaseUnderTest, clock: Clock, config: dict[str, Any] | None = None
) -> Any:
    return build_services(
        Settings(database_url=test_database.url, runbooks=RUNBOOKS),
        BallastConfig.model_validate(config or {}),
        clock=clock,
        db=test_database.make(),
    )


async def test_auto_mitigations_run_only_for_runbooks_that_have_some(
    test_database: DatabaseUnderTest, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = services_for(test_database, clock)
    runs: list[int] = []

    async def run_auto(incident_id: int, opened: Any = None, written: Any = None) -> list[Any]:
        runs.append(incident_id)
        return []

    monkeypatch.setattr(services.executor, "run_auto", run_auto)
    assert [m.id for m in services.executor.auto_mitigations(WITH_AUTO)]
    assert services.executor.auto_mitigations(WITHOUT_AUTO) == []
    assert services.executor.auto_mitigations(None) == []
    assert services.executor.auto_mitigations("no/such-runbook") == []

    await services.auto.incidents_changed(
        [opened(1, None), opened(2, WITHOUT_AUTO), opened(3, WITH_AUTO), opened(4, "gone/runbook")]
    )
    reopened = IncidentChange(5, {ChangeKind.REOPENED}, runbook_id=WITH_AUTO)
    updated = IncidentChange(6, {ChangeKind.UPDATED}, runbook_id=WITH_AUTO)
    await services.auto.incidents_changed([reopened, updated])
    await services.auto.drain()
    assert runs == [3, 5]
    await services.db.close()


async def test_scorecard_snapshots_only_where_panels_may_show(
    test_database: DatabaseUnderTest, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def record(services: Any) -> list[int]:
        taken: list[int] = []

        async def snapshot(incident_id: int, moment: str, label: str, at: Any = None) -> bool:
            taken.append(incident_id)
            return True

        monkeypatch.setattr(services.scorecards, "snapshot", snapshot)
        await services.scorecards.incidents_changed(
            [opened(1, None), opened(2, WITH_AUTO), opened(3, OWN_PANELS)]
        )
        await services.scorecards.drain()
        await services.db.close()
        return taken

    # No service has a scorecard: only the runbook with panels of its own is snapshot.
    assert await record(services_for(test_database, clock)) == [3]
    # A service's scorecard may be any incident's, triage included: each is looked at.
    panel = {"name": "errors", "query": "sum(rate(errors_total[5m]))", "good": "down"}
    config = {"services": {"svc": {"scorecard": [panel]}}}
    assert await record(services_for(test_database, clock, config)) == [1, 2, 3]


async def test_the_first_auto_mitigation_runs_from_the_engines_change_unread(
    test_database: DatabaseUnderTest, clock: Clock
) -> None:
    """The change that opens an incident carries it as the commit left it (status, runbook,
    first alert), so the auto mitigator reads neither the incident nor its alerts before the
    claim: one read session fewer between the alert and the control write."""
    services = services_for(test_database, clock)
    await services.db.migrate()
    await store_tool_failure(services, clock)
    heard: list[IncidentChange] = []

    class Listen:
        async def incidents_changed(self, changes: list[IncidentChange]) -> None:
            heard.extend(changes)

    services.bus.subscribe(Listen())
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(services.db.engine.sync_engine, "before_cursor_execute", record)
    try:
        assert await services.engine.process_pending() == 1
        await services.auto.drain()
    finally:
        event.remove(services.db.engine.sync_engine, "before_cursor_execute", record)
    [opened_change] = [c for c in heard if ChangeKind.OPENED in c.kinds]
    assert opened_change.opened is not None
    assert opened_change.opened.first_alert.labels == TOOL_FAILURE
    assert await services.controls.read("support-assistant.tools.order_lookup.enabled") is False
    claim = next(i for i, s in enumerate(statements) if "INSERT INTO executions" in s)
    # A new incident's alerts are not read at all before the claim: the engine found no
    # incident of that key to read them from, and the auto mitigator had them in the change.
    assert [s for s in statements[:claim] if "FROM incident_alerts" in s] == []
    await services.db.close()
