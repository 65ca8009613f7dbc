"""A mitigation whose control lives in Ballast's own database (the built-in store) is planned,
claimed and written in one transaction, then recorded, on SQLite and PostgreSQL (issue 16).

A new incident's first auto mitigation is claimed and written in the engine's own transaction
(no savepoint), so the value an AI application reads over OFREP changes with the commit that
opens the incident; any other run claims and writes in one transaction of its own. Never a
value without its execution; the record follows in its own transaction (the value is served
without waiting for it), and if it fails the lease's takeover finishes it as for any backend.
Any error rolls the claim back with the write: in the engine's transaction the whole attempt,
redone without the claim (the incident is still opened), and the request then takes the usual
path, and the three steps every other backend takes if it fails again (which retry and
journal).
"""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.engine.interfaces import CacheStats
from sqlalchemy.exc import OperationalError

from actions.base import Risk
from actions.builtin.disable_tool import DisableTool
from actions.errors import FinalError
from bot.controls import store as store_module
from bot.controls.store import SessionControlWrites
from bot.errors import PolicyError
from bot.execution import executor as executor_module
from bot.execution.results import ExecutionState
from bot.incidents.outcome import AlertOutcome
from bot.incidents.timeline import TimelineKind
from bot.store import sqlite_driver
from bot.store.ingest_pacing import INGEST_BUSY_ALERTS
from bot.store.tables import Execution, InboxAlert, Incident, TimelineEntry
from tests.conftest import Clock, DatabaseUnderTest
from tests.execution.test_listener_skips import services_for, store_tool_failure
from tests.store.thread_hops import recording_thread_calls

KEY = "support-assistant.tools.order_lookup.enabled"


async def services_with_an_alert(test_database: DatabaseUnderTest, clock: Clock) -> Any:
    """Ballast on the test database, the tool on, and one stored alert of a runbook whose
    first auto mitigation disables the tool (undo timer, verification)."""
    services = services_for(test_database, clock)
    await services.db.migrate()
    await services.controls.write(KEY, True, actor="U0ONCALL", reason="on by default")
    services.controls.max_staleness = 3600.0  # only a write of this process moves the copy
    assert (await services.controls.current()).values[KEY].value is True
    await store_tool_failure(services, clock)
    return services


async def open_and_mitigate(services: Any) -> None:
    assert await services.engine.process_pending() == 1
    await services.auto.drain()


async def executions(services: Any) -> list[tuple[str, int, str]]:
    async with services.db.sessions() as session:
        rows = await session.execute(
            select(Execution.mitigation_id, Execution.generation, Execution.state)
            .where(Execution.mitigation_id == "disable-tool")
            .order_by(Execution.id)
        )
        return [tuple(row) for row in rows]


async def timeline_kinds(services: Any) -> list[str]:
    """The kinds of the timeline entries about the tool's mitigation, in order."""
    async with services.db.sessions() as session:
        rows = await session.execute(
            select(TimelineEntry.kind, TimelineEntry.details).order_by(TimelineEntry.id)
        )
        return [kind for kind, details in rows if details.get("mitigation_id") == "disable-tool"]


async def check_applied_once(services: Any) -> list[str]:
    """The tool is off, served and stored; one execution, applied; approved and applied once
    in the timeline (whose kinds it returns)."""
    assert (await services.controls.current()).values[KEY].value is False
    assert await services.controls.read(KEY) is False
    assert await executions(services) == [("disable-tool", 1, ExecutionState.APPLIED.value)]
    kinds = await timeline_kinds(services)
    assert kinds.count("mitigation_approved") == 1, kinds
    assert kinds.count("mitigation_applied") == 1, kinds
    return kinds


def trace_statements(services: Any) -> tuple[list[str], Any]:
    """Every statement (on one line), and ``COMMIT`` for each commit, in order."""
    events: list[str] = []

    def statement(conn: Any, cursor: Any, text: str, *args: Any) -> None:
        events.append(" ".join(text.split()))

    def commit(conn: Any) -> None:
        events.append("COMMIT")

    engine = services.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", statement)
    event.listen(engine, "commit", commit)

    def stop() -> None:
        event.remove(engine, "before_cursor_execute", statement)
        event.remove(engine, "commit", commit)

    return events, stop


async def traced_open_and_mitigate(services: Any) -> list[str]:
    """:func:`open_and_mitigate`, with what :func:`trace_statements` saw meanwhile."""
    events, stop = trace_statements(services)
    try:
        await open_and_mitigate(services)
    finally:
        stop()
    return events


def reads_control_values(statement: str) -> bool:
    """A SELECT of a control's value: alone, or on PostgreSQL with the revision's bump."""
    return statement.startswith("SELECT control_values") or (
        statement.startswith("WITH bumped AS (UPDATE control_revision")
        and "JOIN control_values" in statement
    )


def check_record_follows(events: list[str], commit_at: int) -> None:
    """The transaction after the one committed at ``commit_at`` records the execution, and
    nothing reads the control values back after that commit (the OFREP copy took the row)."""
    record = events[commit_at + 1 : events.index("COMMIT", commit_at + 1)]
    assert any(s.startswith("UPDATE executions") for s in record), record
    assert sum(s.startswith("INSERT INTO timers") for s in record) >= 2, record
    after = events[commit_at:]
    assert not [s for s in after if s.startswith("SELECT") and "control_values" in s], after


async def test_the_engine_opens_claims_and_writes_in_one_transaction(
    test_database: DatabaseUnderTest, clock: Clock
) -> None:
    services = await services_with_an_alert(test_database, clock)
    events = await traced_open_and_mitigate(services)

    opened = next(i for i, s in enumerate(events) if s.startswith("INSERT INTO incidents"))
    commit_at = events.index("COMMIT", opened)
    transaction = events[opened:commit_at]
    # The incident, the claim and the control write (revision, value, history): one commit,
    # no savepoint (its two statements were on the path to the served value).
    [claim] = [s for s in transaction if "INSERT INTO executions" in s]
    # Its 'approved' entry: on PostgreSQL in the claim's own statement, which is the control
    # write's (bot.store.riders: one round trip for both).
    on_postgres = services.db.dialect == "postgresql"
    assert ("INSERT INTO timeline" in claim) == on_postgres, claim
    assert ("INSERT INTO control_values" in claim) == on_postgres, claim
    assert not [s for s in transaction if "SAVEPOINT" in s], transaction
    # The control's write lock before the plan's read, which the write then uses: one read
    # (on PostgreSQL in the bump's own statement).
    reads = [i for i, s in enumerate(transaction) if reads_control_values(s)]
    bump = next(i for i, s in enumerate(transaction) if "UPDATE control_revision" in s)
    assert len(reads) == 1, transaction
    if services.db.dialect == "postgresql":
        assert bump == reads[0], transaction
    else:
        assert bump < reads[0], transaction
    assert any("INSERT INTO control_history" in s for s in transaction), transaction
    # The transaction inserted the incident: the claim reads neither it nor its executions.
    reads = [s for s in transaction if s.startswith(("SELECT incidents", "SELECT executions"))]
    assert not reads, transaction
    check_record_follows(events, commit_at)

    await check_applied_once(services)
    await services.db.close()


async def test_a_run_outside_the_engine_claims_and_writes_in_one_transaction(
    test_database: DatabaseUnderTest, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the engine's transaction (here: its opening listener off), the run's own
    transaction reads the plan, claims and writes; no read session before it."""
    services = await services_with_an_alert(test_database, clock)

    async def not_in_the_engine(*args: Any) -> None:
        return None

    monkeypatch.setattr(services.auto, "incidents_opening", not_in_the_engine)
    events = await traced_open_and_mitigate(services)

    claim = next(i for i, s in enumerate(events) if "INSERT INTO executions" in s)
    commit_after = events.index("COMMIT", claim)
    begun = max(i for i, s in enumerate(events[:claim]) if s == "COMMIT")  # the engine's
    transaction = events[begun + 1 : commit_after]
    # The claim and the control write (revision, value, history) are one transaction, and
    # nothing of the control was read before it in another; on PostgreSQL the claim's INSERT
    # rides on the write's statement (bot.store.riders).
    assert any("UPDATE control_revision" in s for s in transaction), transaction
    assert any("control_values" in s for s in transaction), transaction
    assert any("INSERT INTO control_history" in s for s in transaction), transaction
    on_postgres = services.db.dialect == "postgresql"
    assert ("INSERT INTO control_values" in events[claim]) == on_postgres, events[claim]
    reads = [i for i, s in enumerate(events) if s.startswith("SELECT") and "control_values" in s]
    assert reads, events
    assert all(begun < i < commit_after for i in reads), events
    check_record_follows(events, commit_after)

    await check_applied_once(services)
    await services.db.close()


async def test_a_failure_in_the_write_leaves_neither_value_nor_execution(
    test_database: DatabaseUnderTest, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fault injected: the control write fails after its value was written (on SQLite
    before its history row; on PostgreSQL, where one statement writes both, after it), in
    the engine's transaction and again in the run's own. Made in separate transactions, the
    claim would stay, ``running``; the incident is opened all the same."""
    services = await services_with_an_alert(test_database, clock)

    def fails(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("injected: the write fails after the value")

    async def append_change(*args: Any, **kwargs: Any) -> None:
        fails()

    monkeypatch.setattr(store_module, "append_change", append_change)
    monkeypatch.setattr(store_module, "ControlChange", fails)
    await open_and_mitigate(services)  # the auto mitigator logs the error

    assert await services.controls.read(KEY) is True
    assert (await services.controls.current()).values[KEY].value is True
    assert await executions(services) == []
    async with services.db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Incident)) == 1
    kinds = await timeline_kinds(services)
    assert "mitigation_approved" not in kinds, kinds
    async with services.db.sessions() as session:
        history = await session.scalar(select(func.count()).select_from(Execution))
    assert history == 0
    await services.db.close()


async def test_a_first_mitigation_that_changes_nothing_still_stores_its_execution(
    test_database: DatabaseUnderTest, clock: Clock
) -> None:
    """The control holds the mitigation's value already: its write sends no statement that
    carries the execution's INSERT (on PostgreSQL, ``bot.store.riders``), which then goes on
    its own in the same transaction, before the commit; the execution is stored and
    recorded once, as for a write that changed the value."""
    services = services_for(test_database, clock)
    await services.db.migrate()
    await services.controls.write(KEY, False, actor="U0ONCALL", reason="off already")
    services.controls.max_staleness = 3600.0
    await store_tool_failure(services, clock)
    events = await traced_open_and_mitigate(services)

    opened = next(i for i, s in enumerate(events) if s.startswith("INSERT INTO incidents"))
    transaction = events[opened : events.index("COMMIT", opened)]
    [claim] = [s for s in transaction if "INSERT INTO executions" in s]
    assert "INSERT INTO control_values" not in claim, claim
    assert not [s for s in transaction if s.startswith("INSERT INTO control_values")]
    assert await executions(services) == [("disable-tool", 1, ExecutionState.APPLIED.value)]
    kinds = await timeline_kinds(services)
    assert kinds.count("mitigation_approved") == 1, kinds
    assert kinds.count("mitigation_applied") == 1, kinds
    assert await services.controls.read(KEY) is False
    await services.db.close()


async def test_an_action_error_rolls_back_and_takes_the_three_steps(
    test_database: DatabaseUnderTest, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The write refused inside the engine's transaction and then inside the run's own: each
    time the claim is rolled back with it (else the next try would find its own execution
    ``running`` and do nothing), and the three-step path applies it through the store's own
    transaction."""
    services = await services_with_an_alert(test_database, clock)
    refused: list[str] = []

    async def write(self: SessionControlWrites, key: str, value: Any, **kwargs: Any) -> Any:
        refused.append(key)
        raise FinalError("injected: refused inside the claim's transaction")

    monkeypatch.setattr(SessionControlWrites, "write", write)
    await open_and_mitigate(services)

    assert refused == [KEY, KEY]
    kinds = await check_applied_once(services)
    assert "mitigation_failed" not in kinds, kinds
    await services.db.close()


async def test_a_failed_record_is_finished_by_the_takeover(
    test_database: DatabaseUnderTest, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The value is served from the claim's commit; if the record then fails (a crash), the
    execution is ``running`` under this replica's lease, and the recovery pass after the lease
    expired applies it again (a retry: the value before stays the one the plan saw)."""
    services = await services_with_an_alert(test_database, clock)
    applied = executor_module.journal.applied

    def fails(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("injected: the record fails")

    monkeypatch.setattr(executor_module.journal, "applied", fails)
    await open_and_mitigate(services)
    assert (await services.controls.current()).values[KEY].value is False
    assert await executions(services) == [("disable-tool", 1, ExecutionState.RUNNING.value)]

    monkeypatch.setattr(executor_module.journal, "applied", applied)
    assert await services.executor.recover() == 0  # the lease has not expired
    clock.advance(seconds=services.executor.lease_length.total_seconds() + 1)
    assert await services.executor.recover() == 1
    assert await executions(services) == [("disable-tool", 1, ExecutionState.APPLIED.value)]
    async with services.db.sessions() as session:
        outcome = await session.scalar(
            select(Execution.outcome).where(Execution.mitigation_id == "disable-tool")
        )
    assert (outcome["before"], outcome["after"]) == (True, False)
    assert await services.controls.read(KEY) is False
    await services.db.close()


async def test_an_unexpected_error_in_the_engines_transaction_never_fails_the_batch(
    test_database: DatabaseUnderTest, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever goes wrong while claiming the first mitigation in the engine's transaction,
    the alert is processed and its incident opened; the mitigation runs after the commit."""
    services = await services_with_an_alert(test_database, clock)

    async def broken(*args: Any) -> None:
        raise RuntimeError("injected: a bug in the first claim")

    monkeypatch.setattr(services.executor, "claim_first_in", broken)
    await open_and_mitigate(services)

    async with services.db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Incident)) == 1
    assert await services.controls.read(KEY) is False
    assert await executions(services) == [("disable-tool", 1, ExecutionState.APPLIED.value)]
    await services.db.close()


async def inbox_outcomes(services: Any) -> list[str | None]:
    """Each stored alert's outcome, in order."""
    async with services.db.sessions() as session:
        return list(await session.scalars(select(InboxAlert.outcome).order_by(InboxAlert.id)))


async def test_a_failure_part_way_redoes_the_batch_without_the_first_claim(
    test_database: DatabaseUnderTest, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fault injected once: the control write fails in the engine's transaction after
    the execution and its 'approved' entry were written. With no savepoint to roll back to,
    the engine rolls the attempt back and redoes the batch without its opening listener: the
    alert is processed once, into one incident opened once, and the mitigation is then run
    the usual way and applied once, generation 1 (a batch that went on would keep the
    failed attempt's execution and entry)."""
    services = await services_with_an_alert(test_database, clock)
    write = SessionControlWrites.write
    failed: list[str] = []

    async def fails_once(self: SessionControlWrites, key: str, value: Any, **kwargs: Any) -> Any:
        if not failed:
            failed.append(key)
            raise RuntimeError("injected: the write fails after the claim's rows")
        return await write(self, key, value, **kwargs)

    monkeypatch.setattr(SessionControlWrites, "write", fails_once)
    events = await traced_open_and_mitigate(services)

    assert failed == [KEY]
    assert sum(s.startswith("INSERT INTO incidents") for s in events) == 2, events  # redone
    kinds = await check_applied_once(services)
    assert "mitigation_failed" not in kinds, kinds
    async with services.db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Incident)) == 1
        opened = await session.scalar(
            select(func.count()).select_from(TimelineEntry).where(TimelineEntry.kind == "opened")
        )
    assert opened == 1
    assert await inbox_outcomes(services) == [AlertOutcome.NEW_ALERT]
    await services.db.close()


async def test_a_failed_first_claim_redoes_the_others_of_its_batch_too(
    test_database: DatabaseUnderTest, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two incidents opened by one batch: the first one's mitigation is claimed and written,
    the second one's fails. The whole attempt is rolled back (the first one's write told so,
    never served) and redone without either claim; both mitigations then run the usual way,
    each applied once."""
    services = await services_with_an_alert(test_database, clock)
    other = "support-assistant.tools.second.enabled"
    await services.controls.write(other, True, actor="U0ONCALL", reason="on by default")
    await store_tool_failure(services, clock, tool="second")
    write = SessionControlWrites.write
    calls: list[str] = []

    async def second_fails_once(
        self: SessionControlWrites, key: str, value: Any, **kwargs: Any
    ) -> Any:
        calls.append(key)
        if key == other and calls.count(other) == 1:
            raise RuntimeError("injected: the second incident's write fails")
        return await write(self, key, value, **kwargs)

    monkeypatch.setattr(SessionControlWrites, "write", second_fails_once)
    assert await services.engine.process_pending() == 2
    await services.auto.drain()

    assert calls[:2] == [KEY, other], calls  # both in the engine's first attempt
    assert (calls.count(KEY), calls.count(other)) == (2, 2), calls  # then each run's own
    values = (await services.controls.current()).values
    assert (values[KEY].value, values[other].value) == (False, False)
    async with services.db.sessions() as session:
        rows = await session.execute(
            select(Execution.incident_id, Execution.generation, Execution.state)
            .where(Execution.mitigation_id == "disable-tool")
            .order_by(Execution.incident_id)
        )
        states = [tuple(row) for row in rows]
        assert await session.scalar(select(func.count()).select_from(Incident)) == 2
    assert [(g, s) for _, g, s in states] == [(1, ExecutionState.APPLIED.value)] * 2
    assert len({incident for incident, _, _ in states}) == 2
    assert await inbox_outcomes(services) == [AlertOutcome.NEW_ALERT] * 2
    await services.db.close()


async def test_a_first_mitigation_that_needs_an_approval_is_left_to_the_usual_path(
    test_database: DatabaseUnderTest, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An auto mitigation whose change rates medium needs an owner's approval: the engine's
    transaction writes nothing of it (it is decided before the claim's first write; only the
    control's write lock was taken), and the usual path asks for the approval."""
    services = await services_with_an_alert(test_database, clock)
    monkeypatch.setattr(DisableTool, "risk", lambda self, params, current=None: Risk.MEDIUM)
    events = await traced_open_and_mitigate(services)

    opened = next(i for i, s in enumerate(events) if s.startswith("INSERT INTO incidents"))
    transaction = events[opened : events.index("COMMIT", opened)]
    assert not [s for s in transaction if "INSERT INTO executions" in s], transaction
    assert not [s for s in transaction if "INTO control_values" in s], transaction
    assert sum(s.startswith("INSERT INTO incidents") for s in events) == 1, events  # not redone
    awaiting = ExecutionState.AWAITING_APPROVAL.value
    assert await executions(services) == [("disable-tool", 1, awaiting)]
    assert await services.controls.read(KEY) is True
    assert (await services.controls.current()).values[KEY].value is True
    await services.db.close()


async def test_a_refusal_in_the_engines_transaction_is_rolled_back_and_journaled_once(
    test_database: DatabaseUnderTest, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Were Ballast's own request refused, the refusal journaled in the engine's transaction
    is rolled back with the attempt (no savepoint) and the batch redone; the usual path then
    refuses and journals it once."""
    services = await services_with_an_alert(test_database, clock)

    def refuses(*args: Any) -> Any:
        raise PolicyError("injected: refused")

    monkeypatch.setattr(executor_module, "decide", refuses)
    events = await traced_open_and_mitigate(services)

    assert sum(s.startswith("INSERT INTO incidents") for s in events) == 2, events  # redone
    assert await executions(services) == []
    async with services.db.sessions() as session:
        refusals = await session.scalar(
            select(func.count())
            .select_from(TimelineEntry)
            .where(TimelineEntry.kind == TimelineKind.MITIGATION_REFUSED)
            .where(TimelineEntry.summary.contains("disable-tool"))
        )
        assert await session.scalar(select(func.count()).select_from(Incident)) == 1
    assert refusals == 1
    assert await services.controls.read(KEY) is True
    await services.db.close()


async def test_a_transient_error_in_the_first_claim_redoes_the_batch_with_it(
    test_database: DatabaseUnderTest, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A conflict while claiming the first mitigation loses the engine's whole transaction:
    the batch is redone as it was, first claim included, and the mitigation is written in
    the engine's transaction that commits (applied once)."""
    services = await services_with_an_alert(test_database, clock)
    claim_first_in = services.executor.claim_first_in
    conflicts: list[int] = []

    async def conflicts_once(session: Any, incident_id: int, opened: Any) -> Any:
        if not conflicts:
            conflicts.append(incident_id)
            locked = sqlite3.OperationalError("database is locked")
            raise OperationalError("UPDATE control_revision", None, locked)
        return await claim_first_in(session, incident_id, opened)

    monkeypatch.setattr(services.executor, "claim_first_in", conflicts_once)
    events = await traced_open_and_mitigate(services)

    assert len(conflicts) == 1
    inserts = [i for i, s in enumerate(events) if s.startswith("INSERT INTO incidents")]
    assert len(inserts) == 2, events  # the attempt lost, and the one that committed
    committed = events[inserts[-1] : events.index("COMMIT", inserts[-1])]
    assert any("INSERT INTO executions" in s for s in committed), committed
    await check_applied_once(services)
    await services.db.close()


async def test_a_lost_engine_commit_claims_again_and_applies_once(
    test_database: DatabaseUnderTest, clock: Clock
) -> None:
    """The engine's commit is lost once (a conflict) after its opening listener claimed and
    wrote: that attempt's work is told rolled back (the OFREP copy re-reads), the redone batch
    claims and writes again, and the mitigation is applied once, generation 1."""
    services = await services_with_an_alert(test_database, clock)
    lost: list[int] = []

    def lose_the_first_commit(conn: Any) -> None:
        if not lost:
            lost.append(1)
            locked = sqlite3.OperationalError("database is locked")
            raise OperationalError("COMMIT", None, locked)

    engine = services.db.engine.sync_engine
    event.listen(engine, "commit", lose_the_first_commit)
    try:
        await open_and_mitigate(services)
    finally:
        event.remove(engine, "commit", lose_the_first_commit)

    assert lost == [1]
    await check_applied_once(services)
    async with services.db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Incident)) == 1
    await services.db.close()


@pytest.mark.parametrize("database_kind", ["sqlite"])
@pytest.mark.parametrize("storm", [False, True], ids=["quiet", "storm"])
async def test_on_sqlite_the_engines_transaction_makes_no_thread_hop_but_in_a_storm(
    test_database: DatabaseUnderTest, clock: Clock, monkeypatch: pytest.MonkeyPatch, storm: bool
) -> None:
    """The write lock first (inline: it was free), then every statement inline: the claim, the
    incident and the first mitigation's claim and write make no turn of the event loop
    (bot.store.sqlite_driver). The COMMIT of a first mitigation's value runs inline too, its
    value served the moment it is durable; in a storm (webhooks at a storm's rate) it goes to
    the thread (the fsync), the loop left to the webhooks meanwhile."""
    services = await services_with_an_alert(test_database, clock)
    monkeypatch.setattr(sqlite_driver, "_inline_commits_from", 0.0)  # no slow one before
    if storm:
        services.inbox_writer.pacing.committed(INGEST_BUSY_ALERTS)
        assert services.inbox_writer.pacing.busy
    hops = recording_thread_calls(monkeypatch)
    events, stop = trace_statements(services)
    try:
        assert await services.engine.process_pending() == 1
    finally:
        stop()
        monkeypatch.undo()
    assert events[0].startswith("UPDATE inbox_alerts"), "the lock is the batch's first statement"
    assert any("UPDATE control_revision" in s for s in events), events
    # Up to its commit (a listener's read may follow before process_pending returns).
    assert events.index("COMMIT") > events.index(next(s for s in events if "control_revision" in s))
    if storm:
        assert hops[: hops.index("commit") + 1] == ["commit"], (hops, events)
    else:
        assert "commit" not in hops, (hops, events)
    assert (await services.controls.current()).values[KEY].value is False, "served at once"
    await services.auto.drain()
    assert await executions(services) == [("disable-tool", 1, ExecutionState.APPLIED.value)]
    await services.db.close()


async def test_a_lone_alerts_path_compiles_no_statement_once_warm(
    test_database: DatabaseUnderTest, clock: Clock
) -> None:
    """From a lone alert to its recorded mitigation, every statement comes from SQLAlchemy's
    compiled cache once one like it has run (a statement compiled again per batch, the
    multi-row INSERT of new incidents on SQLite, cost more CPU than SQLite's work for it).
    Driver SQL (the batch's executemany writes, ``bot.store.driver_sql``) is compiled once
    per process, never here."""
    services = services_for(test_database, clock)
    await services.db.migrate()
    compiled: list[str] = []

    def record(
        _conn: Any, _cursor: Any, statement: str, _params: Any, context: Any, _many: bool
    ) -> None:
        if (
            context is not None
            and context.compiled is not None
            and context.cache_hit is not CacheStats.CACHE_HIT
        ):
            compiled.append(" ".join(statement.split())[:70])

    engine = services.db.engine.sync_engine
    for tool in ("warm_up", "lone"):
        await store_tool_failure(services, clock, tool=tool)
        if tool == "lone":
            event.listen(engine, "before_cursor_execute", record)
        await open_and_mitigate(services)
    event.remove(engine, "before_cursor_execute", record)
    assert compiled == []
    await services.db.close()


async def test_the_engines_transaction_flushes_no_orm_object(
    test_database: DatabaseUnderTest, clock: Clock
) -> None:
    """From the claim of a lone alert to its first mitigation's control write, every row is
    written by a statement built once: no unit-of-work flush (the execution and its
    'approved' entry were ORM objects flushed per claim, about a millisecond of CPU)."""
    from bot.store.database import _Session

    services = await services_with_an_alert(test_database, clock)
    flushed: list[str] = []

    def before_flush(session: Any, _context: Any, _instances: Any) -> None:
        flushed.extend(type(obj).__name__ for obj in (*session.new, *session.dirty))

    event.listen(_Session, "before_flush", before_flush)
    try:
        assert await services.engine.process_pending() == 1
    finally:
        event.remove(_Session, "before_flush", before_flush)
    assert flushed == []
    await services.auto.drain()
    await check_applied_once(services)
    await services.db.close()
