"""Undo: restore what an applied mitigation changed (on request, or by its ``undo_after`` timer).

Like a run: the row moves to ``undoing`` in one transaction (a second request finds it and
does nothing), the backend is called outside any transaction with retries, and the outcome is
recorded in a second one, by the replica that still holds the execution's lease (see
:mod:`bot.execution.leases`). A failed undo leaves the mitigation ``applied`` and tells its
owners.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from actions.base import Action
from actions.context import ActionOutcome
from actions.errors import ActionError
from bot import telemetry
from bot.errors import ConflictError
from bot.execution import journal
from bot.execution.leases import LeaseKeeper
from bot.execution.requests import TAKEN_OVER, ExecutorBase, result_of
from bot.execution.results import ExecutionState, Preview, RunResult
from bot.execution.retrying import guarded, with_retries
from bot.incidents.actors import Actor, as_actor
from bot.runbooks.schema import Mitigation
from bot.scheduling.timers import TimerKind
from bot.store import executions as store
from bot.store.retry import in_transaction
from bot.store.tables import Execution
from bot.telemetry import names


class UndoSteps(ExecutorBase):
    async def undo(
        self,
        incident_id: int,
        mitigation_id: str,
        actor: Actor | str,
        *,
        dry_run: bool = False,
        reason: str = "",
    ) -> RunResult:
        """Restore what the mitigation changed."""
        who = as_actor(actor)
        with telemetry.span(
            names.MITIGATION_UNDO,
            {
                names.INCIDENT_ID: incident_id,
                names.MITIGATION_ID: mitigation_id,
                names.ACTOR: who.name,
            },
        ) as span:
            result = await self._undo(incident_id, mitigation_id, who, dry_run, reason)
            span.set_attribute(names.EXECUTION_STATE, str(result.state))
            await self._announce(result)
        return result

    async def _undo(
        self, incident_id: int, mitigation_id: str, actor: Actor, dry_run: bool, reason: str
    ) -> RunResult:
        runbook, mitigation, _planned, action, _ = await self._prepare(incident_id, mitigation_id)
        if not actor.is_system:
            await self._authorize(incident_id, actor, runbook, f"undo {mitigation_id}")
        now = self._clock()
        dry = dry_run or self._dry_run

        async def claim(session: AsyncSession) -> RunResult | tuple[Any, ActionOutcome, Execution]:
            _, row = await store.locked(session, incident_id, mitigation_id)
            if row is None or row.state in (
                ExecutionState.AWAITING_APPROVAL,
                ExecutionState.FAILED,
                ExecutionState.DONE_MANUALLY,
            ):
                raise ConflictError(f"mitigation {mitigation_id!r} has not been applied")
            if row.state in (ExecutionState.UNDONE, ExecutionState.UNDOING):
                return result_of(row, f"already {row.state}; nothing done", False)
            if row.state == ExecutionState.RUNNING:
                raise ConflictError(f"mitigation {mitigation_id!r} is still being applied")
            params = action.parse(row.params)
            if not action.reversible(params):
                raise ConflictError(f"{action.name} cannot be undone ({action.describe(params)})")
            if not dry:
                row.state = ExecutionState.UNDOING.value
                row.updated_at = now
                self._lease_row(row, now)
            return params, ActionOutcome(**row.outcome), row

        claimed = await in_transaction(self._db, claim, what=f"undo of {mitigation_id}")
        if isinstance(claimed, RunResult):
            return claimed
        params, applied, row = claimed
        if not dry:
            return await self._finish_undo(row, mitigation, action, params, applied, actor, reason)
        ctx = self._contexts.make(
            actor=actor.name, idempotency_key=f"undo:{row.idempotency_key}", dry_run=True
        )
        outcome = await guarded(lambda: action.undo(params, ctx, applied))
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

    async def _finish_undo(
        self,
        execution: Execution,
        mitigation: Mitigation,
        action: Action[Any],
        params: Any,
        applied: ActionOutcome,
        actor: Actor,
        reason: str,
    ) -> RunResult:
        """Call the backend and record the outcome, under this replica's lease (also how a
        replica that took over an ``undoing`` row finishes it)."""
        incident_id, mitigation_id, execution_id = (
            execution.incident_id,
            execution.mitigation_id,
            execution.id,
        )
        ctx = self._contexts.make(
            actor=actor.name, idempotency_key=f"undo:{execution.idempotency_key}", reason=reason
        )
        async with LeaseKeeper(self._db, execution_id, self._lease, self._clock):
            try:
                outcome = await with_retries(self._retry, lambda: action.undo(params, ctx, applied))
            except ActionError as err:
                problem = str(err)

                async def failed(session: AsyncSession) -> bool:
                    _, row = await store.locked(session, incident_id, mitigation_id)
                    assert row is not None
                    if not self._holds(row, execution_id, ExecutionState.UNDOING):
                        return False
                    row.state = ExecutionState.APPLIED.value
                    row.error = f"undo failed: {problem}"
                    row.updated_at = self._clock()
                    row.lease_expires_at = None
                    journal.undo_failed(
                        session, incident_id, self._clock(), actor, mitigation, problem
                    )
                    return True

                if await in_transaction(self._db, failed, what=f"failed undo of {mitigation_id}"):
                    await self._escalate(incident_id, mitigation, f"undo failed: {problem}")
                raise ConflictError(f"undo of {mitigation_id!r} failed: {problem}") from None
            now = self._clock()

            async def record(session: AsyncSession) -> RunResult:
                _, row = await store.locked(session, incident_id, mitigation_id)
                assert row is not None
                if not self._holds(row, execution_id, ExecutionState.UNDOING):
                    return result_of(row, TAKEN_OVER, False)
                row.state = ExecutionState.UNDONE.value
                row.undone_at = now
                row.undone_by = actor.name
                row.updated_at = now
                row.lease_expires_at = None
                journal.undone(session, incident_id, now, actor, mitigation, outcome)
                await store.cancel_timer(
                    session,
                    f"{TimerKind.AUTO_UNDO}:{row.idempotency_key}",
                    now,
                    f"undone by {actor.name}",
                )
                return result_of(row, outcome.summary, True)

            return await in_transaction(self._db, record, what=f"record of undo of {mitigation_id}")
