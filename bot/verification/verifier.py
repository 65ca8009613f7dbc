"""Did it work? Fires ``verify`` timers: checks Prometheus, records a verdict, takes the ladder.

After a mitigation with ``verify:`` is applied, the executor schedules its first check one
``interval`` later (:mod:`bot.execution.verify_timer`). Each check queries every expression
twice: as of the moment the mitigation was applied (before) and now (after). ``recovered`` or
``worse`` end the checks at once; otherwise the next check is scheduled, until ``within``
has passed and the verdict is ``not_recovered`` (or ``unknown``, when Prometheus could not
answer: the reason is recorded and the incident carries on).

The verdict is journaled once per execution (a timer handler may run twice after a crash; the
timeline is checked under the incident's lock), then the ladder step it calls for
(``on_not_recovered`` / ``on_worse``) is journaled before it is taken, so it is taken at most
once. Every step goes through the :class:`~bot.execution.executor.MitigationExecutor` as
Ballast itself, so the owner and two-person rules hold: ``next`` runs an ``auto`` mitigation
and asks the owners to approve any other. ``next`` moves down the runbook to a mitigation not
run since the incident (re)opened, so a ladder never loops.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime

from bot.errors import ConflictError, NotFoundError, PolicyError, TemplateError
from bot.execution.executor import MitigationExecutor
from bot.execution.results import ExecutionState
from bot.execution.verify_timer import schedule_verification
from bot.incidents.actors import SYSTEM
from bot.incidents.changes import ChangeBus, ChangeKind, Note
from bot.incidents.escalation import Escalator
from bot.incidents.lifecycle import IncidentStatus
from bot.incidents.timeline import SYSTEM_ACTOR, TimelineKind
from bot.intake.alert import template_context
from bot.runbooks.catalog import LiveCatalog
from bot.runbooks.promql import render_promql
from bot.runbooks.schema import LadderStep, Mitigation, MitigationMode, Runbook, VerifyCheck
from bot.store import executions
from bot.store import incidents as repo
from bot.store.database import Database
from bot.store.tables import Execution, Incident, Timer
from bot.verification.prometheus import PrometheusClient, Reading
from bot.verification.scorecard import ScorecardRecorder
from bot.verification.verdicts import CheckResult, Verdict, describe, final, judge, overall

log = logging.getLogger(__name__)

ClientFor = Callable[[str | None], PrometheusClient | None]
"""The Prometheus of a service (its own, or the top-level one), None when none is configured."""

NO_PROMETHEUS = "no Prometheus configured (prometheus: in ballast.yaml)"


class Verifier:
    def __init__(
        self,
        db: Database,
        catalog: LiveCatalog,
        clients: ClientFor,
        executor: MitigationExecutor,
        escalator: Escalator,
        bus: ChangeBus,
        *,
        clock: Callable[[], datetime],
        scorecard: ScorecardRecorder | None = None,
    ) -> None:
        self._scorecard = scorecard
        self._db = db
        self._catalog = catalog
        self._clients = clients
        self._executor = executor
        self._escalator = escalator
        self._bus = bus
        self._clock = clock

    async def fire(self, timer: Timer) -> str:
        """The timer handler: one check of one execution; returns what it did."""
        incident_id = int(timer.incident_id or 0)
        mitigation_id = str(timer.payload["mitigation_id"])
        generation = int(timer.payload["generation"])
        attempt = int(timer.payload.get("attempt", 1))
        async with self._db.sessions() as session:
            try:
                incident = await repo.get(session, incident_id)
            except NotFoundError:
                return "skipped: the incident is gone"
            execution = await executions.latest(session, incident_id, mitigation_id)
            # The first alert only (what the queries are rendered from): a storm incident
            # holds tens of thousands, and reading them all was a 150 MB spike per check.
            first_alert = await repo.first_alert_of(session, incident_id)
        # Resolved already (the mitigation worked faster than the alert's resolve arrived, or
        # someone resolved it): checks go on until `within`, and a final verdict (recovered,
        # worse) is still recorded, but no ladder step is taken.
        resolved = incident.status == IncidentStatus.RESOLVED.value
        if execution is None or execution.generation != generation:
            return "skipped: the mitigation ran again since"
        if execution.state != ExecutionState.APPLIED.value or execution.applied_at is None:
            return f"skipped: the mitigation is {execution.state}"
        runbook = self._runbook(incident)
        mitigation = runbook.mitigation(mitigation_id) if runbook else None
        if runbook is None or mitigation is None or mitigation.verify is None:
            return "skipped: the runbook no longer verifies this mitigation"
        if first_alert is None:
            return "skipped: the incident has no alerts to render queries from"
        context = template_context(first_alert)
        client = self._clients(incident.service)
        applied_at = execution.applied_at
        results = [
            await self._check(check, context, client, applied_at)
            for check in mitigation.verify.checks
        ]
        verdict = overall(results)
        now = self._clock()
        deadline = applied_at + mitigation.verify.within
        # Without a Prometheus there is nothing to wait for: unknown at once, with the reason.
        if not final(verdict) and now < deadline and client is not None:
            due = min(mitigation.verify.interval, deadline - now)
            async with self._db.transaction() as session:
                await schedule_verification(session, execution, due, now, attempt=attempt + 1)
            return f"check {attempt}: {verdict} so far ({describe(results)}); next in {due}"
        if resolved and not final(verdict):
            return f"skipped: resolved ({verdict}: {describe(results)})"
        return await self._conclude(
            incident, runbook, mitigation, execution, verdict, results, ladder=not resolved
        )

    async def _check(
        self,
        check: VerifyCheck,
        context: dict[str, object],
        client: PrometheusClient | None,
        applied_at: datetime,
    ) -> CheckResult:
        try:
            query = render_promql(check.query, context)
        except TemplateError as err:
            return CheckResult(
                check.label, check.query, check.condition, None, None, Verdict.UNKNOWN, str(err)
            )
        if client is None:
            before = after = Reading(None, NO_PROMETHEUS)
        else:
            before = await client.query(query, at=applied_at)
            after = await client.query(query)
        verdict, reason = judge(
            check.parsed,
            before.value,
            after.value,
            before_reason=before.reason,
            after_reason=after.reason,
        )
        return CheckResult(
            check.label, query, check.condition, before.value, after.value, verdict, reason
        )

    async def _conclude(
        self,
        incident: Incident,
        runbook: Runbook,
        mitigation: Mitigation,
        execution: Execution,
        verdict: Verdict,
        results: Sequence[CheckResult],
        *,
        ladder: bool = True,
    ) -> str:
        now = self._clock()
        assert execution.applied_at is not None
        seconds = (now - execution.applied_at).total_seconds()
        text = f"{mitigation.id}: {describe(results)} in {seconds:.0f} s: {verdict}"
        step = _ladder_step(mitigation, verdict) if ladder else None
        target = await self._next_target(incident, runbook, mitigation) if step else None

        async with self._db.transaction() as session:
            await repo.get(session, incident.id, lock=True)  # one verdict per execution
            entries = await repo.timeline_of(
                session, incident.id, kinds=[TimelineKind.MITIGATION_VERIFIED]
            )
            if any(_verdict_of(entry.details, execution) for entry in entries):
                return "skipped: already verified"
            repo.append_timeline(
                session,
                incident.id,
                at=now,
                actor=SYSTEM_ACTOR,
                kind=TimelineKind.MITIGATION_VERIFIED,
                summary=f"Verified {text}",
                details={
                    "mitigation_id": mitigation.id,
                    "generation": execution.generation,
                    "verdict": verdict.value,
                    "checked_at": now.isoformat(),
                    "applied_at": execution.applied_at.isoformat(),
                    "values": [result.as_details() for result in results],
                },
            )
            if step is not None:
                repo.append_timeline(
                    session,
                    incident.id,
                    at=now,
                    actor=SYSTEM_ACTOR,
                    kind=TimelineKind.MITIGATION_LADDER,
                    summary=_ladder_summary(mitigation, verdict, step, target),
                    details={
                        "mitigation_id": mitigation.id,
                        "generation": execution.generation,
                        "verdict": verdict.value,
                        "step": step.value,
                        "target": target.id if target else None,
                    },
                )
        await self._bus.changed(incident.id, ChangeKind.UPDATED, Note(f"Verified {text}"))
        if self._scorecard is not None and ladder:  # once resolved, the resolve's is the last
            try:
                await self._scorecard.snapshot(incident.id, "verification", mitigation.id, at=now)
            except Exception:
                log.exception("scorecard snapshot after verifying %s failed", mitigation.id)
        if step is None:
            return text
        return f"{text}; {await self._take(incident, mitigation, step, target)}"

    async def _take(
        self,
        incident: Incident,
        mitigation: Mitigation,
        step: LadderStep,
        target: Mitigation | None,
    ) -> str:
        """Take one ladder step as Ballast itself; failures are logged, never raised."""
        reason = f"verification of {mitigation.id}"
        try:
            if step is LadderStep.UNDO:
                result = await self._executor.undo(
                    incident.id, mitigation.id, SYSTEM, reason=reason
                )
                return f"undo: {result.state}: {result.message}"
            if step is LadderStep.ESCALATE:
                return await self._escalator.escalate_now(incident.id, SYSTEM_ACTOR)
            if target is None:
                return "next: no mitigation left to try"
            result = await self._executor.run(incident.id, target.id, SYSTEM, reason=reason)
            return f"next: {target.id}: {result.state}: {result.message}"
        except (ConflictError, PolicyError, NotFoundError) as err:
            log.warning("ladder step %s of #%d: %s", step, incident.id, err)
            return f"{step}: not taken: {err}"

    async def _next_target(
        self, incident: Incident, runbook: Runbook, mitigation: Mitigation
    ) -> Mitigation | None:
        """The next mitigation down the runbook that Ballast can run and that has not run since
        the incident (re)opened: the ladder only moves down, each rung once."""
        async with self._db.sessions() as session:
            runs = await executions.of_incident(session, incident.id)
            entries = await repo.timeline_of(
                session, incident.id, kinds=[TimelineKind.OPENED, TimelineKind.REOPENED]
            )
        opened = max((e.at for e in entries), default=incident.opened_at)
        ran = {run.mitigation_id for run in runs if run.created_at >= opened}
        ids = [m.id for m in runbook.mitigations]
        for candidate in runbook.mitigations[ids.index(mitigation.id) + 1 :]:
            if candidate.mode is MitigationMode.MANUAL or candidate.id in ran:
                continue
            return candidate
        return None

    def _runbook(self, incident: Incident) -> Runbook | None:
        if incident.runbook_id is None:
            return None
        return self._catalog.current.runbooks.get(incident.runbook_id)


def _ladder_step(mitigation: Mitigation, verdict: Verdict) -> LadderStep | None:
    if verdict is Verdict.NOT_RECOVERED:
        return mitigation.on_not_recovered
    if verdict is Verdict.WORSE:
        return mitigation.worse_step
    return None


def _ladder_summary(
    mitigation: Mitigation, verdict: Verdict, step: LadderStep, target: Mitigation | None
) -> str:
    if step is LadderStep.NEXT:
        then = f"next: {target.id} ({target.mode})" if target else "next: none left to try"
    elif step is LadderStep.UNDO:
        then = f"undo {mitigation.id}"
    else:
        then = "escalate now"
    return f"{mitigation.id} {verdict} → {then}"


def _verdict_of(details: dict[str, object], execution: Execution) -> bool:
    return (
        details.get("mitigation_id") == execution.mitigation_id
        and details.get("generation") == execution.generation
    )
