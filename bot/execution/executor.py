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

A control kept in Ballast's own database (the built-in store) is written in the claim's
transaction (``_claim_and_write``): claim and change commit together or not at all, and the
value is served after that one commit; the record follows as step 3.

Who may do what is decided in :mod:`bot.execution.policy` (``decide``); the execution rows are
made in the store layer (:func:`bot.store.executions.new_generation`); undo is in
:mod:`bot.execution.undo`, and what every request shares in :mod:`bot.execution.requests`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from dataclasses import asdict
from datetime import datetime
from typing import Any, NamedTuple

from opentelemetry import trace
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from actions.backends.base import ControlBackend
from actions.base import Action, Risk
from actions.context import ActionOutcome, ControlPlan
from actions.errors import ActionError, FinalError
from bot import telemetry
from bot.controls.store import BuiltinControlStore, SessionControlWrites
from bot.errors import ConflictError, NotFoundError, PolicyError
from bot.execution import journal
from bot.execution.leases import LeaseKeeper
from bot.execution.policy import (
    Decision,
    decide,
    in_progress,
    waiting_for,
)
from bot.execution.requests import TAKEN_OVER, TAKEN_OVER_WHY, IncidentRead, result_of
from bot.execution.results import ExecutionState, Preview, RunResult
from bot.execution.retrying import guarded, with_retries
from bot.execution.undo import UndoSteps
from bot.execution.verify_timer import schedule_verification
from bot.incidents.actors import SYSTEM, Actor, AuthMethod, as_actor
from bot.incidents.changes import Opened
from bot.incidents.lifecycle import IncidentStatus
from bot.incidents.plan import PlannedMitigation
from bot.incidents.reminders import schedule_reminder
from bot.runbooks.schema import Mitigation, MitigationMode
from bot.runtime.turns import let_waiting_requests_in
from bot.scheduling.timers import TimerKind
from bot.store import executions as store
from bot.store.retry import in_transaction
from bot.store.riders import Rider
from bot.store.tables import Execution, Incident
from bot.store.transient import is_transient
from bot.telemetry import names

AWAITING = ExecutionState.AWAITING_APPROVAL

log = logging.getLogger(__name__)


class Held(NamedTuple):
    """An execution this replica claimed (``running``, under its lease): what applying it needs.

    ``execution_id`` None: its INSERT rides on the claim's control write (see
    :meth:`MitigationExecutor._claim_in`); known once that write is done."""

    execution_id: int | None
    idempotency_key: str
    plan: ControlPlan | None = None

    @property
    def stored_id(self) -> int:
        """The execution's id, which a claim's caller uses only once it is written."""
        if self.execution_id is None:
            raise RuntimeError(f"{self.idempotency_key}: the execution is not written yet")
        return self.execution_id


class Written(NamedTuple):
    """A claim made in a transaction with the built-in store's write: its result, and when it
    moved the execution to ``running``, what was written (recorded after the commit)."""

    result: RunResult
    incident_id: int
    mitigation: Mitigation
    action: Action[Any]
    params: Any
    actor: Actor
    held: Held | None = None
    outcome: ActionOutcome | None = None
    # Untraced (in the engine's transaction, before its spans exist): when the claim began,
    # when it was decided, when the write was done (ns), for spans made after the commit.
    times: tuple[int, int, int] | None = None


class FirstWritten:
    """An incident's first auto mitigation, claimed and written in the engine's transaction:
    the OFREP copy takes the value as that transaction commits (``on_commit``); if it does
    not, the engine calls :meth:`rolled_back` (the copy is re-read).
    :meth:`MitigationExecutor.run_auto` records it."""

    def __init__(self, written: Written, bound: SessionControlWrites) -> None:
        self.written = written
        self._bound = bound

    def rolled_back(self) -> None:
        self._bound.failed()


class _NotAtOnce(Exception):
    """A claim asked to run at once only would not (it needs approvals): nothing written."""


async def _settled(bound: SessionControlWrites, held: Held) -> Held:
    """``held`` with its execution's id, once its INSERT is written: by the control write
    that carried it, or now (an apply that wrote nothing, or wrote without a statement that
    carries)."""
    execution_id = await bound.settle()
    if held.execution_id is not None:
        return held
    if execution_id is None:
        raise RuntimeError(f"{held.idempotency_key}: the execution's INSERT was never written")
    return held._replace(execution_id=int(execution_id))


def plan_of(row: Execution) -> ControlPlan | None:
    return None if row.plan is None else ControlPlan.from_dict(row.plan)


def _rated(mitigation: Mitigation, action: Action[Any], params: Any, current: Any) -> Risk:
    """The risk of this change from the live value (the runbook may rate it higher)."""
    return mitigation.rated(action.risk(params, None if current is None else str(current).lower()))


def _claim_attributes(span: trace.Span, result: RunResult | PolicyError) -> None:
    if isinstance(result, PolicyError):
        span.set_attribute(names.POLICY_EXECUTE, False)
        return
    span.set_attributes(
        {
            names.POLICY_EXECUTE: result.state == ExecutionState.RUNNING,
            names.POLICY_APPROVALS_NEEDED: result.approvals_needed or 0,
            names.EXECUTION_STATE: str(result.state),
        }
    )


class MitigationExecutor(UndoSteps):
    """Runs, approves, undoes and recovers mitigations (undo: :mod:`bot.execution.undo`)."""

    # ---- run -------------------------------------------------------------------------

    async def run(
        self,
        incident_id: int,
        mitigation_id: str,
        actor: Actor | str,
        *,
        dry_run: bool = False,
        reason: str = "",
    ) -> RunResult:
        """Request, approve or (with enough approvals) apply a mitigation."""
        result = await self._run(incident_id, mitigation_id, as_actor(actor), dry_run, reason)
        await self._announce(result)
        return result

    async def _run(
        self,
        incident_id: int,
        mitigation_id: str,
        actor: Actor,
        dry_run: bool,
        reason: str,
        read: IncidentRead | None = None,
    ) -> RunResult:
        """One request to run a mitigation, in its span (``bot.telemetry``)."""
        with telemetry.span(
            names.MITIGATION,
            {
                names.INCIDENT_ID: incident_id,
                names.MITIGATION_ID: mitigation_id,
                names.ACTOR: actor.name,
            },
        ) as span:
            result = await self._run_once(incident_id, mitigation_id, actor, dry_run, reason, read)
            span.set_attribute(names.EXECUTION_STATE, str(result.state))
            return result

    async def _run_once(
        self,
        incident_id: int,
        mitigation_id: str,
        actor: Actor,
        dry_run: bool,
        reason: str,
        read: IncidentRead | None = None,
    ) -> RunResult:
        runbook, mitigation, planned, action, incident = await self._prepare(
            incident_id, mitigation_id, read
        )
        if incident.status == IncidentStatus.RESOLVED.value:
            raise ConflictError(f"incident {incident_id} is resolved; nothing to mitigate")
        if planned.problem is not None or planned.params is None:
            raise ConflictError(f"mitigation {mitigation_id!r} cannot run: {planned.problem}")
        params = action.parse(planned.params)
        trace.get_current_span().set_attributes(
            {names.RUNBOOK_ID: runbook.id, names.ACTION: action.name}
        )
        if not actor.is_system:
            await self._authorize(incident_id, actor, runbook, f"run {mitigation_id}")
        if dry_run or self._dry_run:
            return await self._preview(incident_id, mitigation, action, params, actor, reason)
        if mitigation.mode is MitigationMode.MANUAL:
            return await self._mark_manual(incident_id, mitigation, actor)

        key = action.control_key(params)
        if key is not None:
            trace.get_current_span().set_attribute(names.CONTROL_KEY, key)
            local = self._store_in_database(params)
            if local is not None:
                done = await self._claim_and_write(
                    incident_id, mitigation, action, planned, params, actor, reason, local, key
                )
                if done is not None:
                    return done
        plan = await self._plan(incident_id, action, params, actor)
        if plan is not None:
            current = plan.before
        else:
            current = await self._current(action, params, key)
        risk = _rated(mitigation, action, params, current)

        claimed, held = await self._claim(
            incident_id, mitigation, action, planned, risk, actor, plan
        )
        if claimed.state != ExecutionState.RUNNING or not claimed.changed:
            return claimed
        return await self._apply(incident_id, mitigation, action, params, actor, reason, held)

    def _store_in_database(self, params: Any) -> BuiltinControlStore | None:
        """The service's control backend when it is the built-in store on this executor's own
        database: then its write can commit in the claim's transaction."""
        try:
            backend = self._contexts.backend_for(params.service)
        except ActionError:
            return None  # no backend: the three-step path fails and journals it
        if isinstance(backend, BuiltinControlStore) and backend.keeps_values_in(self._db):
            return backend
        return None

    async def _claim_and_write(
        self,
        incident_id: int,
        mitigation: Mitigation,
        action: Action[Any],
        planned: PlannedMitigation,
        params: Any,
        actor: Actor,
        reason: str,
        local: BuiltinControlStore,
        key: str,
    ) -> RunResult | None:
        """Plan, claim and write in one transaction, for a control kept in Ballast's own
        database, then record: the value OFREP serves changes with the commit of the claim
        that leases it (one commit after the engine's instead of two, and no read session
        before them). The record follows at once, in its own transaction, so that the value is
        served without waiting for it; a crash in between leaves the execution ``running``
        under its lease, taken over and applied again like any other (the write is then a
        retry and keeps the value before).

        None when the action failed (or the database refused the write): nothing of it was
        committed, and the caller takes the three-step path, which retries the apply and
        journals a failure exactly as for any other backend."""
        now = self._clock()
        bound: SessionControlWrites | None = None

        async def run(session: AsyncSession) -> Written | PolicyError:
            nonlocal bound
            if bound is not None:
                bound.failed()  # an earlier attempt's commit may have landed
            bound = local.in_session(session)
            return await self._claim_and_write_in(
                session, bound, incident_id, mitigation, action, planned, params, actor,
                reason, key, now,
            )  # fmt: skip

        with self._policy_span(incident_id, mitigation) as span:
            try:
                done = await in_transaction(self._db, run, what=f"run of {mitigation.id}")
            except BaseException as err:
                if bound is not None:
                    bound.failed()
                # The database away or busy: the claim alone would fail alike.
                transient = isinstance(err, SQLAlchemyError) and is_transient(err)
                if not isinstance(err, ActionError | SQLAlchemyError) or transient:
                    raise
                log.info(
                    "%s of #%d not applied in its claim's transaction (%s); taking the three steps",
                    mitigation.id,
                    incident_id,
                    err,
                )
                return None
            assert bound is not None  # its writes: in the copy since the commit (on_commit)
            _claim_attributes(span, done if isinstance(done, PolicyError) else done.result)
        if isinstance(done, PolicyError):
            raise done
        if done.outcome is not None:
            await let_waiting_requests_in()  # OFREP's waiting evaluations get the value first
        return await self._record_written(done)

    async def _claim_and_write_in(
        self,
        session: AsyncSession,
        bound: SessionControlWrites,
        incident_id: int,
        mitigation: Mitigation,
        action: Action[Any],
        planned: PlannedMitigation,
        params: Any,
        actor: Actor,
        reason: str,
        key: str,
        now: datetime,
        *,
        traced: bool = True,
        new_incident: bool = False,
        at_once_only: bool = False,
    ) -> Written | PolicyError:
        """The plan's read, the claim and the write, in ``session`` (``bound``: the built-in
        store bound to it). Untraced, it makes no span and returns the times instead.
        ``new_incident``, ``at_once_only``: see :meth:`_claim_in`."""

        def backend_for(service: str) -> ControlBackend:
            backend = self._contexts.backend_for(service)
            return bound if backend is bound.store else backend

        async def assess() -> tuple[Risk, ControlPlan | None]:
            ctx = self._contexts.make(
                actor=actor.name,
                idempotency_key=f"plan:{incident_id}",
                dry_run=True,
                backend_for=backend_for,
            )
            plan = await action.plan(params, ctx)
            current = plan.before if plan is not None else await bound.read(key)
            return _rated(mitigation, action, params, current), plan

        started = time.time_ns()
        claimed = await self._claim_in(
            session, incident_id, mitigation, action, planned, actor, now, assess,
            new_incident=new_incident, at_once_only=at_once_only, carry=bound.carry,
        )  # fmt: skip
        if isinstance(claimed, PolicyError):
            return claimed
        result, held = claimed
        if held is None:
            return Written(result, incident_id, mitigation, action, params, actor)
        ctx = self._contexts.make(
            actor=actor.name,
            idempotency_key=held.idempotency_key,
            reason=reason,
            plan=held.plan,
            backend_for=backend_for,
        )
        decided = time.time_ns()
        if not traced:
            outcome = await action.apply(params, ctx)
            held = await _settled(bound, held)
            times = (started, decided, time.time_ns())
            return Written(
                result, incident_id, mitigation, action, params, actor, held, outcome, times
            )
        with self._apply_span(incident_id, mitigation, action, params) as span:
            outcome = await action.apply(params, ctx)
            span.set_attribute("ballast.action.attempts", 1)
        held = await _settled(bound, held)
        return Written(result, incident_id, mitigation, action, params, actor, held, outcome)

    async def _record_first(self, written: Written, runbook_id: str | None) -> RunResult:
        """Record a first auto mitigation the engine's transaction claimed and wrote, in the
        spans every run has (made now, with the times it took then)."""
        started, decided, applied = written.times or (time.time_ns(),) * 3
        incident_id, mitigation, action = written.incident_id, written.mitigation, written.action
        with telemetry.span(
            names.MITIGATION,
            {
                names.INCIDENT_ID: incident_id,
                names.MITIGATION_ID: mitigation.id,
                names.ACTOR: written.actor.name,
                names.RUNBOOK_ID: runbook_id,
                names.ACTION: action.name,
                names.CONTROL_KEY: action.control_key(written.params),
            },
            start_time=started,
        ) as span:
            with telemetry.span(
                names.POLICY,
                {names.MITIGATION_ID: mitigation.id, names.INCIDENT_ID: incident_id},
                start_time=started,
                end_time=decided,
            ) as policy:
                _claim_attributes(policy, written.result)
            with self._apply_span(
                incident_id, mitigation, action, written.params, start=decided, end=applied
            ) as apply:
                apply.set_attribute("ballast.action.attempts", 1)
            result = await self._record_written(written)
            span.set_attribute(names.EXECUTION_STATE, str(result.state))
        return result

    async def _record_written(self, written: Written) -> RunResult:
        """Step 3 of a claim that wrote (its result as it is when it did not)."""
        if written.held is None or written.outcome is None:
            return written.result
        return await self._record(
            written.incident_id,
            written.mitigation,
            written.action,
            written.params,
            written.actor,
            written.held.stored_id,
            written.outcome,
            1,
        )

    async def claim_first_in(
        self, session: AsyncSession, incident_id: int, opened: Opened
    ) -> FirstWritten | None:
        """In the engine's transaction that opens ``incident_id``: claim and write its first
        ``auto`` mitigation, when that sets a control in the built-in store and may run at
        once (one commit between the webhook's and the served value). None when it is not
        done here, having written nothing: the auto mitigator then runs it the usual way. No
        savepoint: an error once something may be written leaves the transaction to be rolled
        back (the caller, :class:`~bot.execution.auto.AutoMitigator`, tells the engine so).
        Else what :meth:`run_auto` records after the commit (:meth:`FirstWritten.committed`
        first)."""
        autos = self.auto_mitigations(opened.runbook_id)
        if not autos or self._dry_run:
            return None
        mitigation = autos[0]
        try:
            _, _, planned, action, _ = await self._prepare(
                incident_id, mitigation.id, IncidentRead(opened, opened.first_alert)
            )
            if planned.problem is not None or planned.params is None:
                return None
            params = action.parse(planned.params)
        except (ConflictError, NotFoundError, ActionError, ValueError):
            return None  # the usual path tells why, journaled
        key = action.control_key(params)
        local = None if key is None else self._store_in_database(params)
        if key is None or local is None:
            return None
        bound = local.in_session(session)
        # The control write's lock before the plan's read, which the write then uses (the
        # engine's incident locks were all taken before: no other order between them). If it
        # then waits for approvals, the bump commits without a write: the copies re-read.
        await bound.take_write_lock(key)
        # No span here: the engine's spans are made after its commit; run_auto makes this
        # run's (with the times it took) under the incident's, like every other run's.
        try:
            done = await self._claim_and_write_in(
                session, bound, incident_id, mitigation, action, planned, params, SYSTEM, "",
                key, self._clock(), traced=False, new_incident=True, at_once_only=True,
            )  # fmt: skip
        except _NotAtOnce:
            return None  # it waits for approvals: nothing written; the usual path asks
        if isinstance(done, PolicyError) or done.held is None:
            # Its refusal (Ballast's own request is never refused today) or a claim that
            # does not run is in this transaction: rolled back, the usual path records it.
            raise RuntimeError(f"{mitigation.id} of #{incident_id} written but not running")
        return FirstWritten(done, bound)

    async def run_auto(
        self,
        incident_id: int,
        opened: Opened | None = None,
        written: FirstWritten | None = None,
    ) -> list[RunResult]:
        """Run the runbook's ``auto`` mitigations of a newly opened incident, in order.

        The first one uses the incident as the engine's commit left it (``opened``, from its
        change) or as read here (nothing happened in between); each later one reads it again,
        after the runs before it changed it. ``written``: the first one, already claimed and
        written in the engine's transaction (:meth:`claim_first_in`): only recorded here."""
        first = (
            IncidentRead(opened, opened.first_alert)
            if opened is not None
            else await self._read_incident(incident_id)
        )
        autos = self.auto_mitigations(first.incident.runbook_id)
        read: IncidentRead | None = first
        results = []
        if written is not None:
            result = await self._record_first(written.written, first.incident.runbook_id)
            await self._announce(result)
            results.append(result)
            done = written.written.mitigation.id
            autos = [m for m in autos if m.id != done]
            read = None
        for mitigation in autos:
            try:
                result = await self._run(incident_id, mitigation.id, SYSTEM, False, "", read)
                await self._announce(result)
                results.append(result)
            except (ConflictError, PolicyError) as err:
                log.warning(
                    "auto mitigation %s of #%d not run: %s", mitigation.id, incident_id, err
                )
            read = None
        return results

    async def plan_now(self, action_name: str, params: dict[str, Any]) -> dict[str, Any] | None:
        """What running ``action_name`` with ``params`` would change now (a ``Planner`` for
        the incident's views): the same resolution a request stores and its apply uses.
        Raises ``ActionError`` when that cannot be told."""
        action = self._registry[action_name]

        async def plan() -> ControlPlan | None:
            ctx = self._contexts.make(actor=SYSTEM.name, idempotency_key="plan", dry_run=True)
            return await action.plan(action.parse(params), ctx)

        planned = await guarded(plan)
        return None if planned is None else planned.as_dict()

    async def _plan(
        self, incident_id: int, action: Action[Any], params: Any, actor: Actor
    ) -> ControlPlan | None:
        """The exact change the apply would make now (the action's own resolution, the one
        its apply uses), stored with the request. None when it cannot be planned now: the
        apply then resolves it itself and fails, journaled, if it still cannot."""
        ctx = self._contexts.make(
            actor=actor.name, idempotency_key=f"plan:{incident_id}", dry_run=True
        )
        try:
            return await guarded(lambda: action.plan(params, ctx))
        except ActionError as err:
            log.warning("could not plan %s for #%d: %s", action.name, incident_id, err)
            return None

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
        actor: Actor,
        reason: str,
    ) -> RunResult:
        ctx = self._contexts.make(
            actor=actor.name, idempotency_key=f"dry-run:{incident_id}", reason=reason, dry_run=True
        )
        try:
            outcome = await guarded(lambda: action.apply(params, ctx))
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

    async def _mark_manual(
        self, incident_id: int, mitigation: Mitigation, actor: Actor
    ) -> RunResult:
        async with self._db.transaction() as session:
            journal.manual(session, incident_id, self._clock(), actor, mitigation)
        return RunResult(
            incident_id,
            mitigation.id,
            ExecutionState.DONE_MANUALLY,
            f"{mitigation.title}: recorded as done by hand by {actor.name}",
        )

    async def _claim(
        self,
        incident_id: int,
        mitigation: Mitigation,
        action: Action[Any],
        planned: PlannedMitigation,
        risk: Risk,
        actor: Actor,
        plan: ControlPlan | None = None,
    ) -> tuple[RunResult, Held | None]:
        """Step 1: record the request or approval; claim the row when it may run. With the
        result, the execution this request moved to ``running`` (None when it did not)."""
        now = self._clock()

        async def assessed() -> tuple[Risk, ControlPlan | None]:
            return risk, plan

        async def claim(session: AsyncSession) -> tuple[RunResult, Held | None] | PolicyError:
            return await self._claim_in(
                session, incident_id, mitigation, action, planned, actor, now, assessed
            )

        with self._policy_span(incident_id, mitigation) as span:
            result = await in_transaction(self._db, claim, what=f"claim of {mitigation.id}")
            _claim_attributes(span, result if isinstance(result, PolicyError) else result[0])
        if isinstance(result, PolicyError):
            raise result
        return result

    async def _claim_in(
        self,
        session: AsyncSession,
        incident_id: int,
        mitigation: Mitigation,
        action: Action[Any],
        planned: PlannedMitigation,
        actor: Actor,
        now: datetime,
        assess: Callable[[], Awaitable[tuple[Risk, ControlPlan | None]]],
        *,
        new_incident: bool = False,
        at_once_only: bool = False,
        carry: Callable[[Rider], None] | None = None,
    ) -> tuple[RunResult, Held | None] | PolicyError:
        """The claim's statements in ``session``. ``assess`` gives the risk and plan of a new
        generation (not asked for when an approval adds to a waiting one). A refusal is
        journaled and returned (the caller commits, then raises it). ``new_incident``: the
        incident was inserted by ``session``'s own transaction (the engine's), so it is locked
        by it and has no executions yet: nothing to read for either. ``at_once_only``: claim
        only a request that runs at once, else write nothing and raise :class:`_NotAtOnce`
        (decided before the first write: the engine's transaction has no savepoint).
        ``carry``: where a new generation that runs at once may hand its INSERT, to go with
        the control write that follows (:mod:`bot.store.riders`; the held execution's id is
        then None until the caller settles it)."""
        # The incident's lock serialises requests per incident (lock order: store.locked).
        execution = None
        if not new_incident:
            _, execution = await store.locked(session, incident_id, mitigation.id)
        if execution is not None and in_progress(ExecutionState(execution.state)):
            return result_of(execution, f"already {execution.state}; nothing done", False), None
        new = execution is None or ExecutionState(execution.state) is not AWAITING
        if new:
            risk, plan = await assess()
            execution = store.new_generation(
                incident_id=incident_id,
                mitigation_id=mitigation.id,
                previous=execution,
                action=action.name,
                params=planned.params or {},
                risk=risk.value,
                state=AWAITING.value,
                requested_by=actor.name,
                now=now,
                plan=None if plan is None else plan.as_dict(),
            )
        assert execution is not None
        previous = list(execution.approvals.get("actors", []))
        try:
            decision = decide(previous, actor, mitigation.mode, Risk(execution.risk))
        except PolicyError as err:
            # Nothing stored of a refused request but the refusal (a new generation has no
            # approvals yet, which ``decide`` never refuses; an awaiting one stays as it was).
            journal.refused(session, incident_id, now, actor, f"approve {mitigation.id}", str(err))
            return err
        if at_once_only and not decision.execute:
            raise _NotAtOnce
        result = await self._approved(
            session, execution, mitigation, decision, actor, now, new=new, carry=carry
        )
        if result.state != ExecutionState.RUNNING:
            return result, None
        return result, Held(execution.id, execution.idempotency_key, plan_of(execution))

    @staticmethod
    def _policy_span(
        incident_id: int, mitigation: Mitigation
    ) -> AbstractContextManager[trace.Span]:
        return telemetry.span(
            names.POLICY, {names.MITIGATION_ID: mitigation.id, names.INCIDENT_ID: incident_id}
        )

    @staticmethod
    def _apply_span(
        incident_id: int,
        mitigation: Mitigation,
        action: Action[Any],
        params: Any,
        *,
        start: int | None = None,
        end: int | None = None,
    ) -> AbstractContextManager[trace.Span]:
        return telemetry.span(
            f"{names.ACTION_APPLY} {action.name}",
            {
                names.INCIDENT_ID: incident_id,
                names.MITIGATION_ID: mitigation.id,
                names.ACTION: action.name,
                names.CONTROL_KEY: action.control_key(params),
            },
            start_time=start,
            end_time=end,
        )

    async def _approved(
        self,
        session: AsyncSession,
        execution: Execution,
        mitigation: Mitigation,
        decision: Decision,
        actor: Actor,
        now: datetime,
        *,
        new: bool = False,
        carry: Callable[[Rider], None] | None = None,
    ) -> RunResult:
        """Record ``decision`` on ``execution``: ``new``, a generation not stored yet (one
        INSERT with it, handed to ``carry`` when it runs at once), else the awaiting one
        (updated)."""
        approvals = list(decision.approvals)
        execution.approvals = {"actors": approvals}
        execution.updated_at = now
        if decision.execute:
            execution.state = ExecutionState.RUNNING.value
            self._lease_row(execution, now)
        entry = journal.approved(
            execution.incident_id, now, actor, mitigation, execution, decision.execute
        )
        if new:
            await store.insert_generation(
                session, execution, entry, carry=carry if decision.execute else None
            )
        else:
            await session.flush()
            await journal.recorded(session, entry)
        plan = plan_of(execution)
        message = "applying" if decision.execute else waiting_for(decision)
        if plan is not None and not decision.execute:
            message += f"; it will set {plan.text()}"
        return RunResult(
            execution.incident_id,
            mitigation.id,
            ExecutionState(execution.state),
            message,
            risk=execution.risk,
            approvals=approvals,
            approvals_needed=decision.needed,
            plan=execution.plan,
        )

    async def _apply(
        self,
        incident_id: int,
        mitigation: Mitigation,
        action: Action[Any],
        params: Any,
        actor: Actor,
        reason: str,
        held: Held | None = None,
    ) -> RunResult:
        """Steps 2 and 3, under this replica's lease of the execution: ``held``, the one this
        request's claim just moved to ``running``, or else (a takeover) the latest."""
        if held is None:
            async with self._db.sessions() as session:
                execution = await store.latest(session, incident_id, mitigation.id)
            assert execution is not None
            held = Held(execution.id, execution.idempotency_key, plan_of(execution))
        execution_id = held.stored_id
        ctx = self._contexts.make(
            actor=actor.name, idempotency_key=held.idempotency_key, reason=reason, plan=held.plan
        )
        attempts = 0

        async def once() -> ActionOutcome:
            nonlocal attempts
            attempts += 1
            return await action.apply(params, ctx)

        async with LeaseKeeper(self._db, execution_id, self._lease, self._clock):
            try:
                with self._apply_span(incident_id, mitigation, action, params) as span:
                    outcome = await with_retries(self._retry, once)
                    span.set_attribute("ballast.action.attempts", attempts)
            except ActionError as err:
                return await self._record_failure(
                    incident_id, mitigation, execution_id, attempts, err
                )
            return await self._record(
                incident_id, mitigation, action, params, actor, execution_id, outcome, attempts
            )

    async def _record(
        self,
        incident_id: int,
        mitigation: Mitigation,
        action: Action[Any],
        params: Any,
        actor: Actor,
        execution_id: int,
        outcome: ActionOutcome,
        attempts: int,
    ) -> RunResult:
        """Step 3: record the outcome, unless another replica took the execution over."""
        now = self._clock()

        async def record(session: AsyncSession) -> RunResult:
            incident, row = await store.locked(session, incident_id, mitigation.id)
            assert row is not None
            if not self._holds(row, execution_id, ExecutionState.RUNNING):
                return result_of(row, TAKEN_OVER, False)
            return await self._record_applied(
                session, incident, row, mitigation, action, params, actor, outcome, attempts, now
            )

        return await in_transaction(self._db, record, what=f"record of {mitigation.id}")

    async def _record_applied(
        self,
        session: AsyncSession,
        incident: Incident,
        row: Execution,
        mitigation: Mitigation,
        action: Action[Any],
        params: Any,
        actor: Actor,
        outcome: ActionOutcome,
        attempts: int,
        now: datetime,
    ) -> RunResult:
        """Step 3's statements, under the incident's lock: the execution applied, the
        timeline, the first reminder, the undo and verification timers."""
        row.state = ExecutionState.APPLIED.value
        row.outcome = asdict(outcome)
        row.attempts = attempts
        row.error = None
        row.applied_at = now
        row.updated_at = now
        row.lease_expires_at = None
        first_mitigation = incident.mitigated_at is None
        journal.applied(session, incident, now, actor, mitigation, row, outcome)
        if first_mitigation and self._remind_every is not None:
            await schedule_reminder(session, incident.id, 0, now + self._remind_every, now)
        if mitigation.undo_after is not None and action.reversible(params):
            await store.add_timer(
                session,
                kind=TimerKind.AUTO_UNDO,
                dedup_key=f"{TimerKind.AUTO_UNDO}:{row.idempotency_key}",
                due_at=now + mitigation.undo_after,
                incident_id=incident.id,
                payload={"mitigation_id": mitigation.id, "generation": row.generation},
                now=now,
            )
        if mitigation.verify is not None:
            await schedule_verification(session, row, mitigation.verify.interval, now)
        return result_of(row, outcome.summary, True)

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

        async def record(session: AsyncSession) -> RunResult:
            _, row = await store.locked(session, incident_id, mitigation.id)
            assert row is not None
            if not self._holds(row, execution_id, ExecutionState.RUNNING):
                return result_of(row, TAKEN_OVER, False)
            row.state = ExecutionState.FAILED.value
            row.error = message
            row.attempts = attempts
            row.updated_at = now
            row.lease_expires_at = None
            journal.failed(session, incident_id, now, mitigation, row, message)
            return result_of(row, message, True)

        result = await in_transaction(self._db, record, what=f"failure of {mitigation.id}")
        if result.changed:
            await self._escalate(incident_id, mitigation, message)
        return result

    # ---- recovery --------------------------------------------------------------------

    async def recover(self) -> int:
        """Take over executions whose lease expired and finish them; returns how many.

        Runs at start and then periodically on every replica. An expired lease means its
        replica died (or handed it back on shutdown) between claim and record; exactly one
        replica takes each (:func:`bot.store.executions.take_over`) and applies it again
        (``running``) or undoes it again (``undoing``) with the same idempotency key. One whose
        runbook or mitigation is gone fails with the reason in the timeline: no row stays
        ``running`` or ``undoing``.
        """
        now = self._clock()
        async with self._db.sessions() as session:
            rows = await store.expired_leases(session, now)
        taken = 0
        for row in rows:
            async with self._db.transaction() as session:
                if not await store.take_over(
                    session, row, self.replica, now, self._lease.expiry(now)
                ):
                    continue  # another replica was first
            taken += 1
            log.warning(
                "taking over %s of %s of incident #%d (lease of %s expired)",
                row.state,
                row.mitigation_id,
                row.incident_id,
                row.lease_owner or "a replica from before leases",
            )
            try:
                await self._resume(row)
            except Exception as err:
                # Guarded per execution: one that cannot be finished (its runbook is gone, its
                # params no longer parse, anything at all goes wrong) fails, journaled; the
                # others are still finished, and a bad row never keeps the server from starting.
                log.exception("cannot finish execution %d", row.id)
                known = isinstance(err, ConflictError | NotFoundError)
                await self._abandon(row, str(err) if known else type(err).__name__)
        return taken

    async def hand_back(self) -> int:
        """At shutdown: make this replica's unfinished leases expire now, so another replica
        takes them over at its next pass instead of a lease length later."""
        async with self._db.transaction() as session:
            return await store.hand_back_leases(session, self.replica, self._clock())

    async def _resume(self, row: Execution) -> None:
        _, mitigation, _, action, _ = await self._prepare(row.incident_id, row.mitigation_id)
        actor = Actor(row.requested_by, AuthMethod.SYSTEM)  # checked before the claim
        if row.state == ExecutionState.UNDOING.value:
            applied = ActionOutcome(**row.outcome)
            await self._finish_undo(
                row, mitigation, action, action.parse(row.params), applied, actor, TAKEN_OVER_WHY
            )
            return
        await self._apply(
            row.incident_id, mitigation, action, action.parse(row.params), actor, TAKEN_OVER_WHY
        )

    async def _abandon(self, row: Execution, why: str) -> None:
        """An execution that can no longer be finished ends with its reason journaled."""
        now = self._clock()

        async def record(session: AsyncSession) -> None:
            _, current = await store.locked(session, row.incident_id, row.mitigation_id)
            if current is None or not self._holds(current, row.id, ExecutionState(row.state)):
                return
            undoing = current.state == ExecutionState.UNDOING.value
            current.state = (ExecutionState.APPLIED if undoing else ExecutionState.FAILED).value
            what = "undo could" if undoing else "could"
            current.error = f"{what} not be finished after a restart or takeover: {why}"
            current.updated_at = now
            current.lease_expires_at = None
            journal.abandoned(session, current, now, current.error)

        try:
            await in_transaction(self._db, record, what=f"abandoning execution {row.id}")
        except Exception:
            log.exception("could not mark execution %d failed; a later pass tries again", row.id)


__all__ = ["MitigationExecutor"]
