"""What every mitigation request shares: the executor's parts, finding the runbook, mitigation,
planned params and action of a request, the owner check, the announcement of a change, and
telling owners about a failure. :class:`bot.execution.executor.MitigationExecutor` builds on it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, NamedTuple, Protocol

from actions.base import Action
from actions.errors import ActionError
from actions.registry import ActionRegistry
from bot.errors import ConflictError, NotFoundError, PolicyError
from bot.execution import journal
from bot.execution.context import ContextFactory
from bot.execution.leases import LeaseTerms
from bot.execution.policy import OwnerDirectory, check_owner
from bot.execution.results import ExecutionState, RunResult
from bot.execution.retrying import RetryPolicy
from bot.incidents.actors import Actor
from bot.incidents.changes import ChangeBus, ChangeKind, Note
from bot.incidents.plan import PlannedMitigation, plan_mitigation
from bot.intake.alert import AlertFacts, template_context
from bot.runbooks.catalog import LiveCatalog
from bot.runbooks.schema import Mitigation, MitigationMode, Runbook
from bot.store import incidents as repo
from bot.store.database import Database
from bot.store.tables import Execution

log = logging.getLogger(__name__)

TAKEN_OVER = "another replica took this execution over; it records the outcome"
TAKEN_OVER_WHY = "taken over: the replica applying it stopped (its lease expired)"


class IncidentFacts(Protocol):
    """What a run needs of its incident: an ``Incident`` row, or the engine's ``Opened``."""

    @property
    def status(self) -> str: ...
    @property
    def runbook_id(self) -> str | None: ...


class IncidentRead(NamedTuple):
    incident: IncidentFacts
    first_alert: AlertFacts | None


class ExecutorBase:
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
        lease: LeaseTerms | None = None,
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
        self._lease = lease or LeaseTerms()

    @property
    def lease_length(self) -> timedelta:
        return self._lease.length

    @property
    def replica(self) -> str:
        """This process's id in execution leases."""
        return self._lease.replica

    def _lease_row(self, row: Execution, now: datetime) -> None:
        """Write this replica's lease into a row it just moved to ``running`` or ``undoing``."""
        row.lease_owner = self._lease.replica
        row.lease_heartbeat_at = now
        row.lease_expires_at = self._lease.expiry(now)

    def _holds(self, row: Execution, execution_id: int, state: ExecutionState) -> bool:
        """Whether this replica still holds the lease of ``row`` (the execution it worked on,
        still in ``state``); if not, another replica took it over and records the outcome."""
        return (
            row.id == execution_id
            and row.state == state.value
            and row.lease_owner == self._lease.replica
        )

    async def _announce(self, result: RunResult) -> None:
        if result.changed:
            note = f"{result.mitigation_id}: {result.state} — {result.message}"
            await self._bus.changed(result.incident_id, ChangeKind.UPDATED, Note(note))

    async def _read_incident(self, incident_id: int) -> IncidentRead:
        """The incident and its first alert (what params are rendered from), one session."""
        async with self._db.reads() as session:
            incident = await repo.get(session, incident_id)
            first_alert = await repo.first_alert_of(session, incident_id)
        return IncidentRead(incident, first_alert)

    async def _prepare(
        self, incident_id: int, mitigation_id: str, read: IncidentRead | None = None
    ) -> tuple[Runbook, Mitigation, PlannedMitigation, Action[Any], IncidentFacts]:
        """``read``: the incident as just read by the caller (else it is read here)."""
        incident, first_alert = read or await self._read_incident(incident_id)
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
        if first_alert is None:
            raise ConflictError(f"incident {incident_id} has no alerts to render params from")
        planned = plan_mitigation(mitigation, self._registry, template_context(first_alert))
        action = self._registry[mitigation.action]
        return runbook, mitigation, planned, action, incident

    def _runbook(self, incident: IncidentFacts) -> Runbook | None:
        return self._runbook_of(incident.runbook_id)

    def _runbook_of(self, runbook_id: str | None) -> Runbook | None:
        if runbook_id is None:
            return None
        return self._catalog.current.runbooks.get(runbook_id)

    def auto_mitigations(self, runbook_id: str | None) -> list[Mitigation]:
        """The ``auto`` mitigations of a runbook in the current catalog, in order (none for
        triage or an unknown runbook)."""
        runbook = self._runbook_of(runbook_id)
        mitigations = runbook.mitigations if runbook is not None else []
        return [m for m in mitigations if m.mode is MitigationMode.AUTO]

    async def _authorize(self, incident_id: int, actor: Actor, runbook: Runbook, what: str) -> None:
        try:
            await check_owner(actor.owner_identity(), runbook.owners, self._directory)
        except PolicyError as err:
            async with self._db.transaction() as session:
                journal.refused(session, incident_id, self._clock(), actor, what, str(err))
            raise

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


def result_of(row: Execution, message: str, changed: bool) -> RunResult:
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
        plan=row.plan,
    )
