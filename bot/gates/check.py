"""The release gate: may this version ship now? Rules from ``gates:`` in ballast.yaml.

A check reads the open incidents of the service (severity, and runbooks that name the kind as a
likely cause), the freeze windows, the evaluation scores given (against bounds and against the
scores recorded when the live version passed its own gate) and the owners' approvals, and
records its decision: a row in ``gate_decisions`` (with the scores, which the next version is
compared with) and a line in the change log (``source: gate``). Every reason it blocks is one
line a pipeline can print.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.changelog.kinds import ChangeKind, kinds_named
from bot.changelog.log import SOURCE_API, SOURCE_GATE, append_gate_decision
from bot.config import FreezeWindow, GateRule
from bot.errors import PolicyError
from bot.execution.policy import OwnerDirectory, is_owner
from bot.incidents.lifecycle import IncidentStatus
from bot.runbooks.catalog import LiveCatalog
from bot.runbooks.schema import Severity
from bot.store import incidents as repo
from bot.store.database import Database
from bot.store.retry import in_transaction
from bot.store.tables import GateApproval, GateDecision, Incident, StoredChange
from bot.store.upsert import upsert

Clock = Callable[[], datetime]
ANY_KIND = "*"
# sev1 is the worst; a triage incident ("triage": no runbook matched) has no severity to rank.
_RANK = {severity.value: rank for rank, severity in enumerate(Severity)}


@dataclass(frozen=True, slots=True)
class GateResult:
    passed: bool
    reasons: list[str]  # why it is blocked (empty when it passed)
    checked: list[str]  # what was checked and held
    scores: dict[str, float] = field(default_factory=dict)
    approvals: list[str] = field(default_factory=list)
    decision_id: int = 0


@dataclass(frozen=True, slots=True)
class GateRequest:
    """A version waiting for owners' approvals: what a gate request message shows."""

    service: str
    kind: ChangeKind
    version: str
    needed: int
    approvers: list[str]  # distinct people, in order of approval
    owners: list[str]  # who may approve (user ids, @groups)

    @property
    def complete(self) -> bool:
        return len(self.approvers) >= self.needed


class GateRequests(Protocol):
    """Where owners are asked (a Slack message with an Approve button): told in the
    transaction that records the check or the approval, so the message commits with it."""

    async def requested(self, session: AsyncSession, request: GateRequest) -> None:
        """A check was blocked (also) by missing approvals: ask the owners, once per version."""

    async def approved(self, session: AsyncSession, request: GateRequest) -> None:
        """An owner approved: show the approvals given and still needed."""


class ReleaseGates:
    def __init__(
        self,
        db: Database,
        catalog: LiveCatalog,
        rules: Mapping[str, Mapping[str, GateRule]],
        directory: OwnerDirectory,
        clock: Clock,
        requests: GateRequests | None = None,
    ) -> None:
        self._db = db
        self._catalog = catalog
        self._rules = rules
        self._directory = directory
        self._clock = clock
        self.requests = requests  # set by bot.app once Slack is wired

    async def approvals(self, service: str, kind: ChangeKind, version: str) -> GateRequest:
        """The approvals ``version`` has and needs now (what a gate request message shows)."""
        rule = self.rule_for(service, kind)
        async with self._db.sessions() as session:
            approvers = await _approvers(session, service, kind, version)
        needed = rule.approvals if rule else 0
        owners = self.owners(service, rule) if rule else []
        return GateRequest(service, kind, version, needed, approvers, owners)

    def rule_for(self, service: str, kind: ChangeKind) -> GateRule | None:
        by_kind = self._rules.get(service, {})
        return by_kind.get(kind.value) or by_kind.get(ANY_KIND)

    def owners(self, service: str, rule: GateRule) -> list[str]:
        """Who may approve: the rule's ``owners``, else every owner of the service's runbooks."""
        if rule.owners:
            return list(rule.owners)
        found: dict[str, None] = {}
        for runbook in self._catalog.current.runbooks.values():
            if runbook.service == service:
                found.update(dict.fromkeys(runbook.owners))
        return list(found)

    async def approve(self, service: str, kind: ChangeKind, version: str, person: str) -> list[str]:
        """Record ``person``'s approval (an owner's; twice counts once); returns who approved."""
        rule = self.rule_for(service, kind)
        if rule is None or rule.approvals == 0:
            raise PolicyError(
                f"no gate of {service} asks for approvals of {kind.value} changes "
                f"(gates.{service} in ballast.yaml)"
            )
        owners = self.owners(service, rule)
        now = self._clock()
        if not await is_owner(person, owners, self._directory):
            refusal = PolicyError(
                f"{person} is not an owner of {service} (owners: {', '.join(owners) or 'none'}); "
                "ask one of them"
            )
            await self._journal_refusal(service, kind, version, person, str(refusal), now)
            raise refusal

        async def work(session: AsyncSession) -> list[str]:
            await session.execute(
                upsert(session, GateApproval)
                .values(service=service, kind=kind.value, version=version, person=person, at=now)
                .on_conflict_do_nothing(index_elements=["service", "kind", "version", "person"])
            )
            approvers = await _approvers(session, service, kind, version)
            if self.requests is not None:
                request = GateRequest(service, kind, version, rule.approvals, approvers, owners)
                await self.requests.approved(session, request)
            return approvers

        return await in_transaction(self._db, work)

    async def _journal_refusal(
        self, service: str, kind: ChangeKind, version: str, person: str, why: str, now: datetime
    ) -> None:
        """A refused approval is on the record: a gate line in the change log."""

        async def work(session: AsyncSession) -> None:
            note = f"approval refused: {why}"
            await append_gate_decision(
                session, service, kind, version, by=person, note=note, at=now
            )

        await in_transaction(self._db, work)

    async def check(
        self,
        service: str,
        kind: ChangeKind,
        version: str,
        scores: Mapping[str, float] | None,
        *,
        by: str,
    ) -> GateResult:
        rule = self.rule_for(service, kind)
        now = self._clock()
        reasons: list[str] = []
        checked: list[str] = []
        approvers: list[str] = []
        if rule is None:
            checked.append(f"no gate is configured for {service} {kind.value} changes")
        else:
            async with self._db.sessions() as session:
                open_statuses = [s.value for s in IncidentStatus if s.is_open]
                incidents = await repo.list_incidents(
                    session, statuses=open_statuses, service=service, limit=200
                )
                live_scores = await _live_scores(session, service, kind)
                approvers = await _approvers(session, service, kind, version)
            self._incidents(rule, kind, incidents, reasons, checked)
            _freeze(rule.freeze, now, reasons, checked)
            _evals(rule, scores, live_scores, reasons, checked)
            if rule.approvals:
                if len(approvers) < rule.approvals:
                    reasons.append(
                        f"needs {rule.approvals} approval(s) from owners of {service} "
                        f"({', '.join(self.owners(service, rule))}), has {len(approvers)}"
                        + (f": {', '.join(approvers)}" if approvers else "")
                        + f"; `ballast gate approve --service {service} --kind {kind.value} "
                        f"--version {version}`"
                    )
                else:
                    checked.append(f"approved by {', '.join(approvers)}")
        passed = not reasons
        request = None
        if rule is not None and rule.approvals and len(approvers) < rule.approvals:
            owners = self.owners(service, rule)
            request = GateRequest(service, kind, version, rule.approvals, approvers, owners)
        decision_id = await self._record(
            service, kind, version, passed, reasons, dict(scores or {}), by, now, request
        )
        return GateResult(passed, reasons, checked, dict(scores or {}), approvers, decision_id)

    def _incidents(
        self,
        rule: GateRule,
        kind: ChangeKind,
        incidents: Sequence[Incident],
        reasons: list[str],
        checked: list[str],
    ) -> None:
        blocking = 0
        for incident in incidents:
            rank = _RANK.get(incident.severity)
            severe = (
                rule.block_on_severity is not None
                and rank is not None
                and rank <= _RANK[rule.block_on_severity.value]
            )
            runbook = (
                self._catalog.current.runbooks.get(incident.runbook_id)
                if incident.runbook_id
                else None
            )
            named = (
                rule.block_on_likely_cause
                and runbook is not None
                and kind in kinds_named(runbook.likely_causes)
            )
            if severe:
                reasons.append(
                    f"open incident #{incident.id} ({incident.severity}): {incident.title}"
                )
            elif named:
                reasons.append(
                    f"open incident #{incident.id} names {kind.value} changes as a likely cause: "
                    f"{incident.title}"
                )
            blocking += bool(severe or named)
        if not blocking:
            checked.append("no open incident blocks it")

    async def _record(
        self,
        service: str,
        kind: ChangeKind,
        version: str,
        passed: bool,
        reasons: list[str],
        scores: dict[str, float],
        by: str,
        now: datetime,
        request: GateRequest | None = None,
    ) -> int:
        """The decision, and (blocked for want of approvals) the owners asked, in one
        transaction."""

        async def work(session: AsyncSession) -> int:
            row = GateDecision(
                service=service, kind=kind.value, version=version, passed=passed,
                reasons=reasons, scores=scores, at=now, by=by,
            )  # fmt: skip
            session.add(row)
            note = "gate passed" if passed else "gate blocked: " + "; ".join(reasons)
            await append_gate_decision(session, service, kind, version, by=by, note=note, at=now)
            if request is not None and self.requests is not None:
                await self.requests.requested(session, request)
            await session.flush()
            return row.id

        return await in_transaction(self._db, work)


async def _approvers(
    session: AsyncSession, service: str, kind: ChangeKind, version: str
) -> list[str]:
    rows = await session.scalars(
        select(GateApproval.person)
        .where(
            GateApproval.service == service,
            GateApproval.kind == kind.value,
            GateApproval.version == version,
        )
        .order_by(GateApproval.id)
    )
    return list(rows)


async def _live_scores(
    session: AsyncSession, service: str, kind: ChangeKind
) -> tuple[str, dict[str, float]] | None:
    """The live version (the latest change a pipeline recorded) and the scores it passed its
    gate with; None when either is unknown."""
    live = await session.scalar(
        select(StoredChange.version)
        .where(
            StoredChange.service == service,
            StoredChange.kind == kind.value,
            StoredChange.source == SOURCE_API,
        )
        .order_by(StoredChange.at.desc(), StoredChange.id.desc())
        .limit(1)
    )
    if live is None:
        return None
    scores = await session.scalar(
        select(GateDecision.scores)
        .where(
            GateDecision.service == service,
            GateDecision.kind == kind.value,
            GateDecision.version == live,
            GateDecision.passed.is_(True),
        )
        .order_by(GateDecision.id.desc())
        .limit(1)
    )
    return (live, dict(scores)) if scores else None


def _freeze(
    windows: list[FreezeWindow], now: datetime, reasons: list[str], checked: list[str]
) -> None:
    for window in windows:
        trigger = window.trigger()
        # Windows are [start, start + duration): the earliest start that still covers now.
        start = trigger.get_next_fire_time(None, now - window.duration + timedelta(seconds=1))
        if start is not None and start <= now:
            end = start + window.duration
            why = f" ({window.reason})" if window.reason else ""
            reasons.append(
                f"release freeze{why}: from {start.isoformat()} until {end.isoformat()} "
                f"({window.cron!r}, {window.timezone}, {_human(window.duration)})"
            )
            return
    if windows:
        checked.append("no release freeze now")


def _evals(
    rule: GateRule,
    scores: Mapping[str, float] | None,
    live: tuple[str, dict[str, float]] | None,
    reasons: list[str],
    checked: list[str],
) -> None:
    if not rule.evals:
        return
    if scores is None:
        reasons.append(
            "no evaluation report given; this gate checks "
            + ", ".join(sorted(rule.evals))
            + " (--evals FILE)"
        )
        return
    for name, bounds in sorted(rule.evals.items()):
        value = scores.get(name)
        if value is None:
            if bounds.required:
                reasons.append(f"{name}: not in the evaluation report")
            continue
        if bounds.min is not None and value < bounds.min:
            reasons.append(f"{name}: {value:.4g} is below the minimum {bounds.min:.4g}")
            continue
        if bounds.max is not None and value > bounds.max:
            reasons.append(f"{name}: {value:.4g} is above the maximum {bounds.max:.4g}")
            continue
        if live is not None and name in live[1] and bounds.max_regression is not None:
            before = float(live[1][name])
            worse = (before - value) if bounds.higher_is_better else (value - before)
            if worse > bounds.max_regression + 1e-12:
                reasons.append(
                    f"{name}: {value:.4g} regresses from {before:.4g} (live version {live[0]}) by "
                    f"{worse:.4g}, more than the {bounds.max_regression:.4g} allowed"
                )
                continue
        checked.append(f"{name}: {value:.4g} ok")
    if live is None:
        checked.append("no recorded scores of the live version to compare with")


def _human(duration: timedelta) -> str:
    hours = duration.total_seconds() / 3600
    return f"{hours:g} h"


__all__ = ["ANY_KIND", "SOURCE_GATE", "GateRequest", "GateRequests", "GateResult", "ReleaseGates"]
