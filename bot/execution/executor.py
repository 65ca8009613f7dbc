"""The executor: policy, exactly-once apply, retries, undo, and the audit trail.

A run goes in three steps so that a change is never applied twice:

1. in one transaction, check the owner and two-person rules and claim the execution row
   (UNIQUE incident/mitigation/generation): a replayed request finds it and does nothing;
2. apply outside any transaction, retrying only ``RetryableError`` with backoff until a
   deadline (tenacity), with the execution's idempotency key passed to the action;
3. in a second transaction, record the outcome (before/after, backend response) in the
   execution and the incident timeline, move the incident to ``mitigating``, and schedule
   ``undo_after``. A crash between 2 and 3 leaves the row ``running``; on start-up such rows
   are applied again — control writes set a value, so doing it twice changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

from actions.base import Action, Risk
from actions.context import ActionOutcome
from actions.errors import ActionError, FinalError
from actions.registry import ActionRegistry
from bot.errors import ConflictError, NotFoundError, PolicyError
from bot.execution import journal
from bot.execution.context import ContextFactory
from bot.execution.plan import PlannedMitigation, plan_mitigations
from bot.execution.policy import (
    SYSTEM_ACTOR,
    OwnerDirectory,
    approvals_needed,
    check_owner,
    record_approval,
)
from bot.execution.results import ExecutionState, Preview, RunResult
from bot.execution.retrying import RetryPolicy, with_retries
from bot.incidents.changes import ChangeBus, ChangeKind
from bot.incidents.lifecycle import IncidentStatus
from bot.intake.alert import template_context
from bot.matching.catalog import LiveCatalog
from bot.matching.runbook import Mitigation, MitigationMode, Runbook
from bot.scheduling.reminders import schedule_reminder
from bot.store import executions as store
from bot.store import incidents as repo
from bot.store.database import Database
from bot.store.tables import Execution, Incident

log = logging.getLogger(__name__)

AUTO_UNDO = "auto_undo"


class MitigationExecutor:
    def __init__(
        self,
        db: Database,
        catalog: LiveCatalog,
        registry: ActionRegistry,
        contexts: ContextFactory,
        directory: OwnerDirectory,
        *,
        clock: Callable[[], datetime],
        retry: RetryPolicy | None = None,
        dry_run: bool = False,
        bus: ChangeBus | None = None,
        remind_every: timedelta | None = None,
    ) -> None:
        self._db = db
        self._catalog = catalog
        self._registry = registry
        self._contexts = contexts
        self._directory = directory
        self._clock = clock
        self._retry = retry or RetryPolicy()
        self._dry_run = dry_run
        self._bus = bus or ChangeBus()
        self._remind_every = remind_every

    # ---- run -------------------------------------------------------------------------

    async def run(
        self,
        incident_id: int,
        mitigation_id: str,
        actor: str,
        *,
        dry_run: bool = False,
        reason: str = "",
    ) -> RunResult:
        """Request, approve or (with enough approvals) apply a mitigation."""
        result = await self._run(incident_id, mitigation_id, actor, dry_run, reason)
        await self._announce(result)
        return result

    async def undo(
        self,
        incident_id: int,
        mitigation_id: str,
        actor: str,
        *,
        dry_run: bool = False,
        reason: str = "",
    ) -> RunResult:
        """Restore what the mitigation changed."""
        result = await self._undo(incident_id, mitigation_id, actor, dry_run, reason)
        await self._announce(result)
        return result

    async def _announce(self, result: RunResult) -> None:
        if result.changed:
            note = f"{result.mitigation_id}: {result.state} — {result.message}"
            await self._bus.changed(result.incident_id, ChangeKind.UPDATED, note)

    async def _run(
        self, incident_id: int, mitigation_id: str, actor: str, dry_run: bool, reason: str
    ) -> RunResult:
        runbook, mitigation, planned, action, incident = await self._prepare(
            incident_id, mitigation_id
        )
        if incident.status == IncidentStatus.RESOLVED.value:
            raise ConflictError(f"incident {incident_id} is resolved; nothing to mitigate")
        if planned.problem is not None or planned.params is None:
            raise ConflictError(f"mitigation {mitigation_id!r} cannot run: {planned.problem}")
        params = action.parse(planned.params)
        if actor != SYSTEM_ACTOR:
            await self._authorize(incident_id, actor, runbook, f"run {mitigation_id}")
        if dry_run or self._dry_run:
            return await self._preview(incident_id, mitigation, action, params, actor, reason)
        if mitigation.mode is MitigationMode.MANUAL:
            return await self._mark_manual(incident_id, mitigation, actor)

        key = action.control_key(params)
        current = await self._current(action, params, key)
        risk = action.risk(params, None if current is None else str(current).lower())

        claimed = await self._claim(incident_id, mitigation, action, planned, risk, actor)
        if claimed.state != ExecutionState.RUNNING or not claimed.changed:
            return claimed
        return await self._apply(incident_id, mitigation, action, params, actor, reason)

    async def run_auto(self, incident_id: int) -> list[RunResult]:
        """Run the runbook's ``auto`` mitigations of a newly opened incident, in order."""
        async with self._db.sessions() as session:
            incident = await repo.get(session, incident_id)
        runbook = self._runbook(incident)
        results = []
        for mitigation in runbook.mitigations if runbook else []:
            if mitigation.mode is not MitigationMode.AUTO:
                continue
            try:
                results.append(await self.run(incident_id, mitigation.id, SYSTEM_ACTOR))
            except (ConflictError, PolicyError) as err:
                log.warning(
                    "auto mitigation %s of #%d not run: %s", mitigation.id, incident_id, err
                )
        return results

    async def _prepare(
        self, incident_id: int, mitigation_id: str
    ) -> tuple[Runbook, Mitigation, PlannedMitigation, Action[Any], Incident]:
        async with self._db.sessions() as session:
            incident = await repo.get(session, incident_id)
            alerts = await repo.alerts_of(session, incident_id)
        runbook = self._runbook(incident)
        if runbook is None:
            raise ConflictError(
                f"incident {incident_id} has no runbook "
                f"({incident.runbook_id or 'triage'}), so it has no mitigations"
            )
        mitigation = runbook.mitigation(mitigation_id)
        if mitigation is None:
            known = ", ".join(m.id for m in runbook.mitigations) or "none"
            raise NotFoundError(
                f"runbook {runbook.id} has no mitigation {mitigation_id!r} (it has: {known})"
            )
        if not alerts:
            raise ConflictError(f"incident {incident_id} has no alerts to render params from")
        context = template_context(alerts[0])
        [planned] = [
            p
            for p in plan_mitigations(runbook, self._registry, context)
            if p.mitigation.id == mitigation_id
        ]
        action = self._registry[mitigation.action]
        return runbook, mitigation, planned, action, incident

    def _runbook(self, incident: Incident) -> Runbook | None:
        if incident.runbook_id is None:
            return None
        return self._catalog.current.runbooks.get(incident.runbook_id)

    async def _authorize(self, incident_id: int, actor: str, runbook: Runbook, what: str) -> None:
        try:
            await check_owner(actor, runbook.owners, self._directory)
        except PolicyError as err:
            async with self._db.transaction() as session:
                journal.refused(session, incident_id, self._clock(), actor, what, str(err))
            raise

    async def _current(self, action: Action[Any], params: Any, key: str | None) -> Any:
        if key is None:
            return None
        backend = self._contexts.backend_for(params.service)
        try:
            return await backend.read(key)
        except ActionError as err:
            log.warning("could not read %s before the change: %s", key, err)
            return None

    async def _preview(
        self,
        incident_id: int,
        mitigation: Mitigation,
        action: Action[Any],
        params: Any,
        actor: str,
        reason: str,
    ) -> RunResult:
        ctx = self._contexts.make(
            actor=actor, idempotency_key=f"dry-run:{incident_id}", reason=reason, dry_run=True
        )
        try:
            outcome = await action.apply(params, ctx)
        except ActionError as err:
            raise ConflictError(f"dry run of {mitigation.id!r}: it would fail: {err}") from None
        async with self._db.transaction() as session:
            journal.dry_run(session, incident_id, self._clock(), actor, mitigation, outcome)
        return RunResult(
            incident_id,
            mitigation.id,
            Preview.DRY_RUN,
            outcome.summary,
            outcome=asdict(outcome),
            changed=False,
        )

    async def _mark_manual(self, incident_id: int, mitigation: Mitigation, actor: str) -> RunResult:
        async with self._db.transaction() as session:
            journal.manual(session, incident_id, self._clock(), actor, mitigation)
        return RunResult(
            incident_id,
            mitigation.id,
            ExecutionState.DONE_MANUALLY,
            f"{mitigation.title}: recorded as done by hand by {actor}",
        )

    async def _claim(
        self,
        incident_id: int,
        mitigation: Mitigation,
        action: Action[Any],
        planned: PlannedMitigation,
        risk: Risk,
        actor: str,
    ) -> RunResult:
        """Step 1: record the request or approval; claim the row when it may run."""
        now = self._clock()
        async with self._db.transaction() as session:
            await repo.get(session, incident_id, lock=True)  # serialises requests per incident
            execution = await store.latest(session, incident_id, mitigation.id, lock=True)
            if execution is not None and execution.state in (
                ExecutionState.RUNNING,
                ExecutionState.APPLIED,
                ExecutionState.UNDOING,
            ):
                return _result(execution, f"already {execution.state}; nothing done", False)
            if execution is None or execution.state not in (ExecutionState.AWAITING_APPROVAL,):
                generation = 1 if execution is None else execution.generation + 1
                execution = Execution(
                    incident_id=incident_id,
                    mitigation_id=mitigation.id,
                    generation=generation,
                    idempotency_key=f"ballast:{incident_id}:{mitigation.id}:{generation}",
                    action=action.name,
                    params=planned.params or {},
                    risk=risk.value,
                    state=ExecutionState.AWAITING_APPROVAL.value,
                    requested_by=actor,
                    approvals={"actors": []},
                    outcome={},
                    attempts=0,
                    created_at=now,
                    updated_at=now,
                )
                session.add(execution)
            stored_risk = Risk(execution.risk)
            previous = list(execution.approvals.get("actors", []))
            needed = approvals_needed(mitigation.mode, stored_risk)
            refusal: PolicyError | None = None
            execute, approvals = needed == 0, previous
            if actor != SYSTEM_ACTOR:
                try:
                    decision = record_approval(previous, actor, mitigation.mode, stored_risk)
                    execute, approvals = decision.execute, list(decision.approvals)
                except PolicyError as err:
                    refusal = err
                    journal.refused(
                        session, incident_id, now, actor, f"approve {mitigation.id}", str(err)
                    )
            if refusal is None:
                execution.approvals = {"actors": approvals}
                execution.updated_at = now
                if execute:
                    execution.state = ExecutionState.RUNNING.value
                journal.approved(session, incident_id, now, actor, mitigation, execution, execute)
                await session.flush()
                waiting = f"waiting for {needed - len(approvals)} more approval(s) from an owner"
                if approvals:
                    waiting += " other than " + ", ".join(approvals)
                result = RunResult(
                    incident_id,
                    mitigation.id,
                    ExecutionState(execution.state),
                    "applying" if execute else waiting,
                    risk=execution.risk,
                    approvals=approvals,
                    approvals_needed=needed,
                )
        if refusal is not None:
            raise refusal
        return result

    async def _apply(
        self,
        incident_id: int,
        mitigation: Mitigation,
        action: Action[Any],
        params: Any,
        actor: str,
        reason: str,
    ) -> RunResult:
        """Steps 2 and 3."""
        async with self._db.sessions() as session:
            execution = await store.latest(session, incident_id, mitigation.id)
        assert execution is not None
        ctx = self._contexts.make(
            actor=actor, idempotency_key=execution.idempotency_key, reason=reason
        )
        attempts = 0

        async def once() -> ActionOutcome:
            nonlocal attempts
            attempts += 1
            return await action.apply(params, ctx)

        try:
            outcome = await with_retries(self._retry, once)
        except ActionError as err:
            return await self._record_failure(incident_id, mitigation, execution.id, attempts, err)
        now = self._clock()
        async with self._db.transaction() as session:
            row = await store.latest(session, incident_id, mitigation.id, lock=True)
            assert row is not None
            row.state = ExecutionState.APPLIED.value
            row.outcome = asdict(outcome)
            row.attempts = attempts
            row.error = None
            row.applied_at = now
            row.updated_at = now
            incident = await repo.get(session, incident_id, lock=True)
            first_mitigation = incident.mitigated_at is None
            journal.applied(session, incident, now, actor, mitigation, row, outcome)
            if first_mitigation and self._remind_every is not None:
                await schedule_reminder(session, incident_id, 0, now + self._remind_every, now)
            if mitigation.undo_after is not None and action.reversible(params):
                await store.add_timer(
                    session,
                    kind=AUTO_UNDO,
                    dedup_key=f"{AUTO_UNDO}:{row.idempotency_key}",
                    due_at=now + mitigation.undo_after,
                    incident_id=incident_id,
                    payload={"mitigation_id": mitigation.id, "generation": row.generation},
                    now=now,
                )
            return _result(row, outcome.summary, True)

    async def _record_failure(
        self,
        incident_id: int,
        mitigation: Mitigation,
        execution_id: int,
        attempts: int,
        err: ActionError,
    ) -> RunResult:
        now = self._clock()
        final = "final" if isinstance(err, FinalError) else f"gave up after {attempts} attempt(s)"
        message = f"{type(err).__name__}: {err} ({final})"
        async with self._db.transaction() as session:
            row = await store.latest(session, incident_id, mitigation.id, lock=True)
            assert row is not None
            assert row.id == execution_id
            row.state = ExecutionState.FAILED.value
            row.error = message
            row.attempts = attempts
            row.updated_at = now
            journal.failed(session, incident_id, now, mitigation, row, message)
            result = _result(row, message, True)
        await self._escalate(incident_id, mitigation, message)
        return result

    async def _escalate(self, incident_id: int, mitigation: Mitigation, message: str) -> None:
        """A failed mitigation is news for the owners, whoever asked for it."""
        async with self._db.sessions() as session:
            incident = await repo.get(session, incident_id)
        runbook = self._runbook(incident)
        owners = runbook.owners if runbook else []
        if not owners:
            return
        text = f"Mitigation {mitigation.id!r} failed on incident #{incident_id}: {message}"
        try:
            await self._contexts.messenger.notify(
                owners, text, idempotency_key=f"failed:{incident_id}:{mitigation.id}"
            )
        except ActionError as err:
            log.error("could not tell owners of #%d about the failure: %s", incident_id, err)

    # ---- undo ------------------------------------------------------------------------

    async def _undo(
        self, incident_id: int, mitigation_id: str, actor: str, dry_run: bool, reason: str
    ) -> RunResult:
        runbook, mitigation, _planned, action, _ = await self._prepare(incident_id, mitigation_id)
        if actor != SYSTEM_ACTOR:
            await self._authorize(incident_id, actor, runbook, f"undo {mitigation_id}")
        now = self._clock()
        async with self._db.transaction() as session:
            await repo.get(session, incident_id, lock=True)
            row = await store.latest(session, incident_id, mitigation_id, lock=True)
            if row is None or row.state in (
                ExecutionState.AWAITING_APPROVAL,
                ExecutionState.FAILED,
                ExecutionState.DONE_MANUALLY,
            ):
                raise ConflictError(f"mitigation {mitigation_id!r} has not been applied")
            if row.state in (ExecutionState.UNDONE, ExecutionState.UNDOING):
                return _result(row, f"already {row.state}; nothing done", False)
            if row.state == ExecutionState.RUNNING:
                raise ConflictError(f"mitigation {mitigation_id!r} is still being applied")
            params = action.parse(row.params)
            if not action.reversible(params):
                raise ConflictError(f"{action.name} cannot be undone ({action.describe(params)})")
            applied = ActionOutcome(**row.outcome)
            if dry_run or self._dry_run:
                ctx = self._contexts.make(
                    actor=actor, idempotency_key=f"undo:{row.idempotency_key}", dry_run=True
                )
            else:
                row.state = ExecutionState.UNDOING.value
                row.updated_at = now
                ctx = self._contexts.make(
                    actor=actor, idempotency_key=f"undo:{row.idempotency_key}", reason=reason
                )
        if ctx.dry_run:
            outcome = await action.undo(params, ctx, applied)
            async with self._db.transaction() as session:
                journal.dry_run(session, incident_id, self._clock(), actor, mitigation, outcome)
            return RunResult(
                incident_id,
                mitigation_id,
                Preview.DRY_RUN,
                outcome.summary,
                outcome=asdict(outcome),
                changed=False,
            )
        try:
            outcome = await with_retries(self._retry, lambda: action.undo(params, ctx, applied))
        except ActionError as err:
            async with self._db.transaction() as session:
                row = await store.latest(session, incident_id, mitigation_id, lock=True)
                assert row is not None
                row.state = ExecutionState.APPLIED.value
                row.error = f"undo failed: {err}"
                row.updated_at = self._clock()
                journal.undo_failed(
                    session, incident_id, self._clock(), actor, mitigation, str(err)
                )
            await self._escalate(incident_id, mitigation, f"undo failed: {err}")
            raise ConflictError(f"undo of {mitigation_id!r} failed: {err}") from None
        now = self._clock()
        async with self._db.transaction() as session:
            row = await store.latest(session, incident_id, mitigation_id, lock=True)
            assert row is not None
            row.state = ExecutionState.UNDONE.value
            row.undone_at = now
            row.undone_by = actor
            row.updated_at = now
            journal.undone(session, incident_id, now, actor, mitigation, outcome)
            await store.cancel_timer(
                session, f"{AUTO_UNDO}:{row.idempotency_key}", now, f"undone by {actor}"
            )
            return _result(row, outcome.summary, True)

    # ---- recovery --------------------------------------------------------------------

    async def recover(self) -> int:
        """Finish executions a crash left ``running`` (step 2 may or may not have happened)."""
        async with self._db.sessions() as session:
            rows = await store.by_state(session, ExecutionState.RUNNING.value)
        for row in rows:
            log.warning(
                "re-applying %s of incident #%d after a restart", row.mitigation_id, row.incident_id
            )
            try:
                _, mitigation, _, action, _ = await self._prepare(
                    row.incident_id, row.mitigation_id
                )
            except (ConflictError, NotFoundError) as err:
                log.error("cannot recover execution %d: %s", row.id, err)
                continue
            await self._apply(
                row.incident_id,
                mitigation,
                action,
                action.parse(row.params),
                row.requested_by,
                "recovered after restart",
            )
        return len(rows)


def _result(row: Execution, message: str, changed: bool) -> RunResult:
    return RunResult(
        incident_id=row.incident_id,
        mitigation_id=row.mitigation_id,
        state=ExecutionState(row.state),
        message=message,
        risk=row.risk,
        approvals=list(row.approvals.get("actors", [])),
        outcome=row.outcome or None,
        attempts=row.attempts,
        changed=changed,
    )
