"""The batched incident engine pass: a batch of stored alerts in a fixed number of statements.

The per-alert path (``IncidentEngine(batched=False)``) spends five to eight statements on every
alert (the stale check, the open incident under its lock, the incident's alert, the writes,
each through the ORM), about 1.4 ms of CPU per alert. Here one batch is:

1. claim the rows (one SELECT, ``SKIP LOCKED`` on PostgreSQL), each with whether a resolve of
   it is already stored (which makes a firing alert stale), and route each to its key;
2. read, in at most three statements, everything else the batch can touch: the incidents of its
   keys (open, newest, and the newest that holds each resolved alert: one statement more when
   the batch has resolves) locked in key order, and their alerts of the batch's fingerprints;
3. apply every row in memory, in the per-alert path's order (by key, then arrival) and with its
   rules, as :func:`bot.incidents.merge.merge_alert` and the engine's ``_apply`` state them:
   stale firings, order-tolerant merges, re-opening within the window, counts moved by each
   alert's exact transition, a resolve with nothing open going to the newest incident that
   holds the alert, the incident resolving when its last alert does;
4. write the result set-based (:func:`bot.store.incident_batch.write_incidents`, then
   :func:`~bot.store.incident_batch.write_rows` with the inbox outcomes: one round trip on
   PostgreSQL).

The two paths are kept equal by ``tests/incidents/test_engine_differential.py``, which feeds the
same random alert sequences to both on fresh databases and compares incidents, alerts and
timelines row by row.
"""

from __future__ import annotations

import functools
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from bot.incidents.changes import AlertSnapshot, ChangeKind, IncidentChange, Note, Opened
from bot.incidents.escalation import escalation_key
from bot.incidents.lifecycle import IncidentStatus, check_transition
from bot.incidents.outcome import AlertOutcome
from bot.incidents.phases import phase_durations
from bot.incidents.routing_key import Routing
from bot.incidents.seen_keys import SeenKeys
from bot.incidents.timeline import SYSTEM_ACTOR, TimelineKind
from bot.intake.alert import AlertStatus
from bot.runbooks.schema import Runbook
from bot.scheduling.timers import TimerKind
from bot.store import inbox
from bot.store import incident_batch as sql
from bot.store.incident_batch import (
    AlertState,
    BatchWrites,
    ClaimedAlert,
    IncidentState,
    TimelineRow,
    TimerRow,
)

log = logging.getLogger(__name__)

TRIAGE_SEVERITY = "triage"
MAX_SERVICE_CHARS = 63  # incidents.service


@dataclass(slots=True)
class PassResult:
    """What one batch did, applied to metrics and listeners only once it committed."""

    changes: dict[int, IncidentChange] = field(default_factory=dict)
    processed: list[inbox.Processed] = field(default_factory=list)
    outcomes: Counter[AlertOutcome] = field(default_factory=Counter)
    unmatched: int = 0
    errors: int = 0
    # When the batch took SQLite's write lock (time.monotonic()); None on PostgreSQL.
    locked_at: float | None = None
    # The trace context the webhooks stored with the rows (bot.telemetry): the batch's links.
    traceparents: set[str] = field(default_factory=set)


Title = Callable[[Routing, ClaimedAlert], tuple[str, str | None]]


class BatchPlan:
    """One batch worked out in memory: the incidents and alerts it read, what it changes."""

    def __init__(
        self,
        incidents: Sequence[IncidentState],
        alerts: Sequence[AlertState],
        holding: dict[tuple[str, str], int],
        stale: set[tuple[str, datetime]],
        *,
        reopen_window: timedelta,
        title: Title,
    ) -> None:
        self._window = reopen_window
        self._title = title
        self._stale = stale
        self._open: dict[str, IncidentState] = {}
        self._latest: dict[str, IncidentState] = {}
        by_id: dict[int, IncidentState] = {}
        for incident in incidents:  # in (key, id) order: the last of a key is its newest
            by_id[incident.ident] = incident
            self._latest[incident.key] = incident
            if incident.open_key is not None:
                self._open[incident.open_key] = incident
        self._holding = {pair: by_id[i] for pair, i in holding.items() if i in by_id}
        self._alerts = {(a.incident, a.fingerprint): a for a in alerts}
        self._touched_incidents: dict[IncidentState, None] = {}
        self._touched_alerts: dict[AlertState, None] = {}
        self._changes: dict[IncidentState, IncidentChange] = {}
        self._new: set[IncidentState] = set()  # opened by this batch (not re-opened)
        self.writes = BatchWrites()

    def apply(
        self, routing: Routing, row: ClaimedAlert, now: datetime
    ) -> tuple[AlertOutcome, IncidentState | None]:
        """One stored alert, as the per-alert engine's ``_apply`` does it."""
        firing = row.status == AlertStatus.FIRING
        if firing and (row.fingerprint, row.starts_at) in self._stale:
            return AlertOutcome.STALE, None
        incident = self._open.get(routing.key)
        if incident is None and not firing:
            incident = self._holding.get((routing.key, row.fingerprint))
            if incident is None:
                return AlertOutcome.RESOLVED_WITHOUT_INCIDENT, None
        elif incident is None:
            incident = self._open_incident(routing, row, now)
        change = self._change(incident)
        outcome = self._merge(incident, row, now, change)
        if row.truncated_alerts:
            change.notes.append(
                Note(
                    f"the source left out {row.truncated_alerts} alert(s) of this group "
                    "(max_alerts); they are not treated as resolved"
                )
            )
        incident.detected_at = min(incident.detected_at, row.starts_at)
        incident.updated_at = now
        self._touch(incident)
        if incident.firing_count == 0 and IncidentStatus(incident.status).is_open:
            self._resolve(incident, now, actor=row.source, reason="all alerts resolved")
            change.kinds.add(ChangeKind.RESOLVED)
        return outcome, incident

    def changes(self) -> dict[int, IncidentChange]:
        """The changes by incident id, in the order incidents were first touched (call after
        the writes, when new incidents have their ids)."""
        first: dict[IncidentState, AlertState] = {}
        for alert in self._touched_alerts:  # in the order they are inserted: lowest id first
            if alert.incident in self._new:
                first.setdefault(alert.incident, alert)
        out: dict[int, IncidentChange] = {}
        for incident, change in self._changes.items():
            change.incident_id = incident.ident
            if incident in first:
                change.opened = Opened(
                    incident.status, incident.runbook_id, AlertSnapshot.of(first[incident])
                )
            out[incident.ident] = change
        return out

    def finish(self) -> BatchWrites:
        self.writes.incidents = list(self._touched_incidents)
        self.writes.alerts = list(self._touched_alerts)
        return self.writes

    def _change(self, incident: IncidentState) -> IncidentChange:
        change = self._changes.get(incident)
        if change is None:
            change = self._changes[incident] = IncidentChange(0, runbook_id=incident.runbook_id)
        return change

    def _touch(self, incident: IncidentState) -> None:
        incident.changed = True
        self._touched_incidents[incident] = None

    def _journal(
        self,
        incident: IncidentState,
        now: datetime,
        actor: str,
        kind: TimelineKind,
        summary: str,
        details: dict[str, object] | None = None,
    ) -> None:
        self.writes.timeline.append(
            TimelineRow(incident, now, actor, kind.value, summary, details or {})
        )

    def _open_incident(self, routing: Routing, row: ClaimedAlert, now: datetime) -> IncidentState:
        previous = self._latest.get(routing.key)
        if (
            previous is not None
            and previous.resolved_at is not None
            and now - previous.resolved_at <= self._window
        ):
            previous.status = IncidentStatus.TRIGGERED.value
            previous.open_key = routing.key
            previous.resolved_at = None
            previous.resolved_by = None
            previous.reopen_count += 1
            previous.updated_at = now
            self._touch(previous)
            self._open[routing.key] = previous
            self._journal(
                previous,
                now,
                SYSTEM_ACTOR,
                TimelineKind.REOPENED,
                f"Re-opened: {row.labels.get('alertname', 'alert')} fired again "
                f"within {self._window} of the resolve",
                {"fingerprint": row.fingerprint, "reopen_count": previous.reopen_count},
            )
            self._change(previous).kinds.add(ChangeKind.REOPENED)
            if routing.runbook is not None:
                self._escalations(previous, routing.runbook, now)
            return previous

        title, title_problem = self._title(routing, row)
        runbook = routing.runbook
        incident = IncidentState(
            id=None,
            key=routing.key,
            open_key=routing.key,
            runbook_id=runbook.id if runbook else None,
            runbook_revision=routing.revision,
            status=IncidentStatus.TRIGGERED.value,
            title=title,
            severity=runbook.severity.value if runbook else TRIAGE_SEVERITY,
            service=runbook.service if runbook else service_label(row.labels),
            group_labels=routing.group_labels,
            alert_count=0,
            firing_count=0,
            detected_at=row.starts_at,
            opened_at=now,
            acknowledged_at=None,
            acknowledged_by=None,
            mitigated_at=None,
            resolved_at=None,
            resolved_by=None,
            reopen_count=0,
            updated_at=now,
        )
        self._touch(incident)
        self._new.add(incident)
        self._open[routing.key] = incident
        self._latest[routing.key] = incident
        summary = f"Opened from {row.source} alert {row.labels.get('alertname', '?')}, " + (
            f"runbook {runbook.id}" if runbook else "no runbook matched (triage)"
        )
        self._journal(
            incident,
            now,
            SYSTEM_ACTOR,
            TimelineKind.OPENED,
            summary,
            {"runbook_id": incident.runbook_id, "group_labels": routing.group_labels},
        )
        if title_problem:
            self._journal(
                incident,
                now,
                SYSTEM_ACTOR,
                TimelineKind.TITLE_FALLBACK,
                f"Runbook title did not render ({title_problem}); used a plain title",
            )
        self._change(incident).kinds.add(ChangeKind.OPENED)
        if runbook is not None:
            self._escalations(incident, runbook, now)
        return incident

    def _escalations(self, incident: IncidentState, runbook: Runbook, now: datetime) -> None:
        """The rows :func:`bot.incidents.escalation.schedule_escalations` adds."""
        reopen_count = incident.reopen_count
        for index, step in enumerate(runbook.escalation):
            self.writes.timers.append(
                TimerRow(
                    incident,
                    TimerKind.ESCALATE.value,
                    functools.partial(_escalation_key, reopen_count=reopen_count, step=index),
                    incident.opened_at + step.after,
                    {"step": index, "reopen_count": reopen_count},
                    now,
                )
            )

    def _merge(
        self, incident: IncidentState, row: ClaimedAlert, now: datetime, change: IncidentChange
    ) -> AlertOutcome:
        """As :func:`bot.incidents.merge.merge_alert`."""
        existing = self._alerts.get((incident, row.fingerprint))
        name = row.labels.get("alertname", "alert")
        if existing is None:
            incident.alert_count += 1
            if row.status == AlertStatus.FIRING:
                incident.firing_count += 1
            alert = AlertState(
                id=None,
                incident=incident,
                fingerprint=row.fingerprint,
                status=row.status,
                starts_at=row.starts_at,
                ends_at=row.ends_at,
                labels=row.labels,
                annotations=row.annotations,
                generator_url=row.generator_url,
                source=row.source,
                first_seen_at=now,
                last_seen_at=now,
            )
            self._alerts[(incident, row.fingerprint)] = alert
            self._touched_alerts[alert] = None
            held = self._holding.get((incident.key, row.fingerprint))
            if held is None or _newer(incident, held):
                self._holding[(incident.key, row.fingerprint)] = incident
            kind = (
                TimelineKind.ALERT_FIRING
                if row.status == AlertStatus.FIRING
                else TimelineKind.ALERT_RESOLVED
            )
            self._journal_alert(incident, row, now, kind, f"{name} {row.status}")
            change.kinds.add(ChangeKind.UPDATED)
            return AlertOutcome.NEW_ALERT
        existing.changed = True
        self._touched_alerts[existing] = None
        if existing.status == AlertStatus.FIRING:
            if row.status == AlertStatus.RESOLVED and row.starts_at >= existing.starts_at:
                incident.firing_count -= 1
                _overwrite(existing, row, now)
                self._journal_alert(
                    incident, row, now, TimelineKind.ALERT_RESOLVED, f"{name} resolved"
                )
                change.kinds.add(ChangeKind.UPDATED)
                return AlertOutcome.RESOLVED
        elif row.status == AlertStatus.FIRING and row.starts_at > existing.starts_at:
            incident.firing_count += 1
            _overwrite(existing, row, now)
            self._journal_alert(
                incident, row, now, TimelineKind.ALERT_REFIRING, f"{name} firing again"
            )
            change.kinds.add(ChangeKind.UPDATED)
            return AlertOutcome.NEW_OCCURRENCE
        existing.last_seen_at = now
        return AlertOutcome.UNCHANGED

    def _journal_alert(
        self,
        incident: IncidentState,
        row: ClaimedAlert,
        now: datetime,
        kind: TimelineKind,
        summary: str,
    ) -> None:
        self._journal(
            incident,
            now,
            row.source,
            kind,
            summary,
            {
                "fingerprint": row.fingerprint,
                "starts_at": row.starts_at.isoformat(),
                "ends_at": row.ends_at.isoformat() if row.ends_at else None,
                "labels": row.labels,
            },
        )

    def _resolve(self, incident: IncidentState, now: datetime, *, actor: str, reason: str) -> None:
        """As :func:`bot.incidents.operations.mark_resolved`."""
        check_transition(IncidentStatus(incident.status), IncidentStatus.RESOLVED)
        incident.status = IncidentStatus.RESOLVED.value
        if incident.open_key is not None:
            self._open.pop(incident.open_key, None)
        incident.open_key = None
        incident.resolved_at = now
        incident.resolved_by = actor
        incident.updated_at = now
        phases = {name: value.total_seconds() for name, value in phase_durations(incident).items()}
        self._journal(
            incident,
            now,
            actor,
            TimelineKind.RESOLVED,
            f"Resolved: {reason}",
            {"phases_seconds": phases},
        )


def _escalation_key(incident_id: int, *, reopen_count: int, step: int) -> str:
    return escalation_key(incident_id, reopen_count, step)


def _newer(a: IncidentState, b: IncidentState) -> bool:
    """Whether ``a`` was opened after ``b`` (new incidents are newer than any stored one)."""
    if a.id is None:
        return b.id is not None
    return b.id is not None and a.id > b.id


def _overwrite(existing: AlertState, row: ClaimedAlert, now: datetime) -> None:
    existing.status = row.status
    existing.starts_at = row.starts_at
    existing.ends_at = row.ends_at
    existing.labels = row.labels
    existing.annotations = row.annotations
    existing.generator_url = row.generator_url
    existing.last_seen_at = now


def service_label(labels: dict[str, object]) -> str | None:
    """A triage incident's service: the alert's ``service`` label, if the column can hold it."""
    value = labels.get("service")
    if not isinstance(value, str) or not value or len(value) > MAX_SERVICE_CHARS:
        return None
    return value


async def run_batch(
    session: AsyncSession,
    rows: Sequence[ClaimedAlert],
    route: Callable[[dict[str, object]], Routing],
    *,
    clock: Callable[[], datetime],
    reopen_window: timedelta,
    title: Title,
    seen: SeenKeys | None = None,
) -> PassResult:
    """Process the claimed ``rows`` in ``session``: read, apply in memory, write.

    On SQLite the caller holds the database's write lock (the engine takes it before its
    claim), so no other writer of this process (an acknowledge, a manual resolve) changes the
    incidents between this read and the write that is based on it; PostgreSQL locks the
    incident rows instead.

    ``seen``: the keys this engine has worked on (told the batch's keys). A batch of one key
    not among them is first worked out as if the key had no incident; when that opens one
    incident and touches nothing else, one statement inserts it if the key indeed has none
    (:func:`~bot.store.incident_batch.insert_first_of_key`), else the batch is worked out again
    from the key's incidents, as without ``seen``.
    """
    done = PassResult()
    if not rows:
        return done
    done.traceparents = {row.traceparent for row in rows if row.traceparent}
    # Key order, arrival order within a key: as the per-alert path (and its lock order).
    routed = sorted(((route(row.labels), row) for row in rows), key=lambda p: p[0].key)
    stale = {
        (row.fingerprint, row.starts_at)
        for _, row in routed
        if row.status == AlertStatus.FIRING and row.resolve_stored
    }
    resolves = {(r.key, row.fingerprint) for r, row in routed if row.status != AlertStatus.FIRING}
    holding = await sql.latest_holding(session, resolves)
    keys = {routing.key for routing, _ in routed}
    worked: _Worked | None = None
    if seen is not None and not holding and len(keys) == 1 and seen.fresh(next(iter(keys))):
        unread = BatchPlan([], [], {}, stale, reopen_window=reopen_window, title=title)
        worked = _work(unread, routed, clock)
        if not await _opened_alone(session, worked.plan):
            # The key has incidents: work the batch out from them (a row that failed to apply
            # is logged again then).
            worked = None
    if worked is None:
        incidents = await sql.lock_incidents(session, keys, holding.values())
        alerts = await sql.alerts_of(
            session, incidents, {(r.key, row.fingerprint) for r, row in routed}
        )
        plan = BatchPlan(
            incidents, alerts, holding, stale, reopen_window=reopen_window, title=title
        )
        worked = _work(plan, routed, clock)
        # A new incident's id is its rows' and outcome's.
        await sql.write_incidents(session, worked.plan.writes)
    if seen is not None:
        seen.saw(keys)
    done.outcomes, done.unmatched, done.errors = worked.outcomes, worked.unmatched, worked.errors
    done.processed = [
        inbox.Processed(row.id, now, outcome, incident.ident if incident else None)
        for row, now, outcome, incident in worked.applied
    ]
    await sql.write_rows(session, worked.plan.writes, inbox.processed_marks(done.processed))
    done.changes = worked.plan.changes()
    return done


@dataclass(slots=True)
class _Worked:
    """A batch applied in memory to ``plan``: each row's outcome, and the counts."""

    plan: BatchPlan
    applied: list[tuple[ClaimedAlert, datetime, AlertOutcome, IncidentState | None]] = field(
        default_factory=list
    )
    outcomes: Counter[AlertOutcome] = field(default_factory=Counter)
    unmatched: int = 0
    errors: int = 0


def _work(
    plan: BatchPlan,
    routed: Sequence[tuple[Routing, ClaimedAlert]],
    clock: Callable[[], datetime],
) -> _Worked:
    """Apply every row to ``plan``, in order; the plan's writes are then final."""
    worked = _Worked(plan)
    for routing, row in routed:
        now = clock()
        try:
            outcome, incident = plan.apply(routing, row, now)
        except Exception:
            # A row that cannot be processed must not block the ones behind it forever.
            log.exception("could not process stored alert %s (%s)", row.id, row.fingerprint)
            worked.errors += 1
            outcome, incident = AlertOutcome.ERROR, None
        if routing.runbook is None and outcome is not AlertOutcome.STALE:
            worked.unmatched += 1
        worked.applied.append((row, now, outcome, incident))
        worked.outcomes[outcome] += 1
    plan.finish()
    return worked


async def _opened_alone(session: AsyncSession, plan: BatchPlan) -> bool:
    """Write ``plan``'s one new incident if its key has none yet; False (nothing written) when
    the plan does more than open one incident, or the key has incidents."""
    touched = plan.writes.incidents
    if len(touched) != 1 or touched[0].id is not None:
        return False
    return await sql.insert_first_of_key(session, touched[0])
