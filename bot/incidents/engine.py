"""The incident engine: stored alerts in, incidents and timeline entries out.

Runs after the webhook's 2xx, from the inbox, so a crash loses nothing: unprocessed rows are
simply processed after the restart. Every step is idempotent and order-tolerant:

* a repeat or duplicate alert state was already dropped by the inbox's unique key;
* a firing notice that arrives after the resolve of the same (fingerprint, startsAt) is stale;
* for one fingerprint, a newer startsAt replaces an older one and never the other way round;
* a resolve with no open incident for its key goes to the latest incident that holds the alert
  (one resolved by hand before the alert ended): its alert and counts follow, it stays
  resolved. Only a resolve for an alert no incident ever held is dropped.

One open incident per key: ``rb:<runbook id>|<group labels>`` for a runbook, or
``triage:<alertname>|<service>`` for alerts no runbook matches, so nothing is dropped silently
(:mod:`bot.incidents.routing_key`).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from bot import telemetry
from bot.errors import TemplateError
from bot.incidents.batch import TRIAGE_SEVERITY, PassResult, run_batch, service_label
from bot.incidents.changes import (
    AfterCommit,
    ChangeKind,
    ChangeListener,
    IncidentChange,
    Note,
    OpeningFailed,
    OpeningListener,
)
from bot.incidents.escalation import schedule_escalations
from bot.incidents.lifecycle import IncidentStatus
from bot.incidents.merge import merge_alert
from bot.incidents.operations import mark_resolved
from bot.incidents.outcome import AlertOutcome
from bot.incidents.route_memo import RouteMemo, route_in
from bot.incidents.routing_key import Routing
from bot.incidents.seen_keys import SeenKeys
from bot.incidents.timeline import SYSTEM_ACTOR, TimelineKind
from bot.intake.alert import AlertFacts, AlertStatus, template_context
from bot.metrics import Metrics
from bot.runbooks.catalog import LiveCatalog
from bot.runbooks.templates import render_template
from bot.runtime.cpu_meter import CpuMeter
from bot.runtime.turns import let_waiting_requests_in
from bot.runtime.worker import WorkerLoop
from bot.store import inbox, incident_batch, sqlite_driver
from bot.store import incidents as repo
from bot.store.database import Database
from bot.store.ingest_pacing import IngestPacing
from bot.store.retry import in_transaction
from bot.store.tables import InboxAlert, Incident
from bot.telemetry import names

log = logging.getLogger(__name__)

__all__ = ["TRIAGE_SEVERITY", "IncidentEngine", "Routing"]


# SQLite: an engine transaction holds the database's one write lock from its first write to its
# commit, and every webhook waits for it. A full 200-row batch (about 1.4 ms per alert) held it
# for 250-300 ms whenever a lull let the engine take one, which a storm resuming after the lull
# paid as a 230-290 ms stall. A transaction now commits once it has worked this long; the rows it
# did not reach stay in the inbox for the next one.
SQLITE_TRANSACTION_BUDGET = 0.02


# The batched path sizes its first SQLite transaction as if a row took this long, and later
# ones from the time the last one took.
INITIAL_ROW_SECONDS = 0.0005
# ...but never below this many rows. A transaction spends about a dozen statements whatever its
# row count, so below a few dozen rows it is mostly that fixed cost: a smaller one hardly holds
# the write lock shorter, it only takes more of them. Sized by time alone, a machine on which
# those statements alone outlast the budget shrank every transaction to one row and the engine
# to 160 alerts/s (a 2-core VM three times slower than the usual, 2026-12-04, issue 16).
MIN_SQLITE_ROWS = 50

_Pass = PassResult

BATCH_SIZE = 500
# The change a batch's incident span is named after ("incident opened"), most telling first.
_SPAN_KINDS = (
    ChangeKind.OPENED,
    ChangeKind.REOPENED,
    ChangeKind.RESOLVED,
    ChangeKind.STATUS,
    ChangeKind.UPDATED,
)
# Span links per batch span at most (the SDK's default limit): one per webhook it processed.
MAX_LINKS = 128
PER_ALERT_BATCH_SIZE = 200
# Batched transactions in flight at once on PostgreSQL (see ``_in_lanes``). A batch is Ballast's
# CPU and the server's, one after the other; with a second one in flight each overlaps the
# other's. SQLite has one write lock and takes one at a time.
POSTGRES_LANES = 2


class IncidentEngine:
    def __init__(
        self,
        db: Database,
        catalog: LiveCatalog,
        metrics: Metrics,
        *,
        clock: Callable[[], datetime],
        listeners: Sequence[ChangeListener] = (),
        opening: Sequence[OpeningListener] = (),
        reopen_window: timedelta = timedelta(minutes=10),
        batch_size: int | None = None,
        poll_interval: float = 1.0,
        sqlite_transaction_budget: float = SQLITE_TRANSACTION_BUDGET,
        pacing: IngestPacing | None = None,
        batched: bool = True,
        lanes: int | None = None,
        seen_keys: SeenKeys | None = None,
    ) -> None:
        """``pacing``: the inbox writer's, so that the engine yields to a webhook storm.

        ``batched``: process each batch set-based (:mod:`bot.incidents.batch`); False keeps the
        per-alert path, which the differential test compares it with. ``batch_size``: rows per
        transaction at most (default 500 batched, 200 per alert). ``opening``: hear the
        incidents a batch opens inside its transaction (batched only; see ``OpeningListener``).
        ``lanes``: batched transactions in flight at once on PostgreSQL (default
        ``POSTGRES_LANES``); SQLite and the per-alert path take one at a time. ``seen_keys``:
        the keys whose lone alerts no longer try to open the key's first incident at once
        (default: a :class:`~bot.incidents.seen_keys.SeenKeys` of its own; see ``run_batch``).
        """
        self._db = db
        self._catalog = catalog
        self._routes: RouteMemo | None = None  # for the catalog snapshot it names
        self._metrics = metrics
        self._clock = clock
        self._listeners = list(listeners)
        self._opening = list(opening)
        self._reopen_window = reopen_window
        self._batched = batched
        self._seen = seen_keys if seen_keys is not None else SeenKeys()
        self._batch_size = batch_size or (BATCH_SIZE if batched else PER_ALERT_BATCH_SIZE)
        self._sqlite_budget = sqlite_transaction_budget
        self._pacing = pacing
        # What the batches finished since the engine last paced cost (None before any).
        self._worked: float | None = None
        # Rows per batched transaction while it has a time budget (SQLite, a storm): adapted
        # to the time the last full transaction took.
        self._min_rows = min(self._batch_size, MIN_SQLITE_ROWS)
        self._sized = max(
            self._min_rows,
            min(self._batch_size, int(sqlite_transaction_budget / INITIAL_ROW_SECONDS)),
        )
        if sqlite_transaction_budget == 0:
            self._sized = 1  # no budget at all: a row per transaction (tests of the budget)
        # One pass at a time in this process: SQLite has no row locks to keep two apart.
        self._pass = asyncio.Lock()
        on_postgres = db.dialect == "postgresql" and batched
        self._lanes = max(1, lanes or POSTGRES_LANES) if on_postgres else 1
        self._loop = WorkerLoop(
            self._run_pass,
            poll_interval=poll_interval,
            log=log,
            failure="incident engine pass failed; retrying after the poll interval",
        )

    def wake(self) -> None:
        """Process soon: called after a webhook commits new alerts."""
        self._loop.wake()

    async def run(self) -> None:
        """Process the inbox until stopped: on wake-up, and every poll interval (for rows that
        other replicas or a previous run left)."""
        await self._loop.run()

    async def stop(self, worker: asyncio.Task[None], grace: float = 10.0) -> None:
        """Let the current pass commit, then end ``worker``; cancel only after ``grace``.

        Cancelling mid-transaction would leave a pooled connection in an unknown state; the
        rows of an unfinished pass are simply processed again after a restart.
        """
        await self._loop.stop(worker, grace)

    async def _run_pass(self) -> None:
        await self.process_pending()

    async def process_pending(self) -> int:
        """Process stored alerts until none are left; returns how many were processed."""
        async with self._pass:
            if self._lanes > 1:
                return await self._in_lanes()
            total = 0
            while True:
                done, more = await self._process_batch()
                total += done
                if not more or self._loop.stopping:
                    return total

    async def _in_lanes(self) -> int:
        """PostgreSQL: up to ``lanes`` batches in flight, each in its own transaction, while
        no storm of webhooks is arriving or while the engine is behind one (else one:
        ``_lanes_now``).

        A lone batch spends Ballast's CPU and the server's one after the other; while one waits
        for the server, the next claims, routes and reads. The next batch starts once the last
        one's claim returned with more rows behind it, so claims (and the pacing's rests) come
        one after another, each taking the rows after the last one's, and a pass that finds
        one batch of work makes one transaction. Batches in flight are what several replicas
        are, within one process (``FOR UPDATE SKIP LOCKED`` claims, incident rows locked in
        key order, a lost race to open an incident redone whole). A failure starts no further
        batch; the ones in flight finish (never cancelled mid-transaction) and the first
        failure is raised.
        """
        running: set[asyncio.Task[tuple[int, bool]]] = set()
        total = 0
        failure: BaseException | None = None
        more = True
        try:
            while True:
                for task in [task for task in running if task.done()]:
                    running.discard(task)
                    if (error := task.exception()) is not None:
                        failure = failure or error
                        continue
                    done, later = task.result()
                    total += done
                    # It saw more behind its rows: the one more row its claim took to know (or,
                    # retried, claimed again) was locked until its commit, so a claim made in
                    # between skipped it and may have found "no more". Look once more.
                    more = more or later
                starting = more and failure is None and not self._loop.stopping
                if starting and len(running) < self._lanes_now():
                    claim = _Claim()
                    running.add(asyncio.create_task(self._process_set_based(claim)))
                    await claim.returned.wait()
                    more = claim.more
                    continue
                if not running:
                    break
                await self._until_a_lane_ends_or_may_start(running, starting)
        except BaseException:
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)
            raise
        if failure is not None:
            raise failure
        return total

    async def _until_a_lane_ends_or_may_start(
        self, running: set[asyncio.Task[tuple[int, bool]]], starting: bool
    ) -> None:
        """Until a batch in flight ends, or, behind a storm with a lane free but webhooks
        waiting, until none waits (the writer says so): then the next lane may start at once.

        Found only as a batch ended, the moment with no webhook waiting came by chance: on a
        slower machine a 60 s storm at 3,000 alerts/s on PostgreSQL left the server's core a
        fifth idle while the inbox lag grew to a p99 of 3.2-8.6 s; looking again the moment the
        writer runs out, 1.5-1.8 s, the webhooks' p99 unchanged (issue 16,
        docs/benchmarks.md)."""
        pacing = self._pacing
        if not (
            starting
            and pacing is not None
            and len(running) < self._lanes
            and pacing.busy
            and pacing.behind
            and pacing.webhooks_waiting
        ):
            await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            return
        written = asyncio.create_task(pacing.until_no_webhook_waits())
        try:
            await asyncio.wait({*running, written}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            written.cancel()  # done or not: it holds nothing

    def _lanes_now(self) -> int:
        """All lanes, except while webhooks are arriving: then one batch at a time (the
        pacing keeps them first: a second batch in flight takes more of the loop from them),
        unless the engine is behind (``IngestPacing.behind``) and no webhook is queued or being
        written at the moment the next batch would start.

        Behind a storm, one lane left the engine waiting for PostgreSQL's round trips in series
        with its own CPU while the server's core was not saturated: under a 3,000 alerts/s
        intake with a backlog, 5,899 / 4,980 alerts/s (storm into 20 incidents / 2,000
        distinct); with a second lane while no webhook waits, 5,907 / 5,439 and 5,975 / 5,743,
        the webhooks' p99 in that phase 14.4 -> 17.4-18.4 and 18.1 -> 27.8-28.1 ms. A second
        lane whenever behind took 7,207 / 6,566 but cost the webhooks' closed-loop ceiling
        14,509 -> 12,308 alerts/s (81% -> 71% of the bare baseline); with the rule it stayed
        at 14,565-14,924 (issue 16, docs/benchmarks.md). The moment to start it is looked for
        again as soon as the writer runs out of webhooks, not only when a batch ends
        (:meth:`_until_a_lane_ends_or_may_start`).
        """
        pacing = self._pacing
        if pacing is None or not pacing.busy or (pacing.behind and not pacing.webhooks_waiting):
            return self._lanes
        return 1

    async def _process_batch(self) -> tuple[int, bool]:
        """One transaction; returns how many rows it processed and whether more may wait."""
        if self._batched:
            return await self._process_set_based()
        budget = self._sqlite_budget if self._db.is_sqlite else None
        # Another replica opened the same incident at the same moment, or a lock cycle was
        # broken: nothing was committed, so the whole batch is redone.
        started = time.time_ns()
        done, claimed = await in_transaction(
            self._db, lambda session: self._batch_in(session, budget), what="batch"
        )
        await self._committed(done, started)
        processed = len(done.processed)
        return processed, processed < claimed or claimed == self._batch_size

    async def _process_set_based(self, claim: _Claim | None = None) -> tuple[int, bool]:
        """One batched transaction (:mod:`bot.incidents.batch`): during a storm of the pacing's
        size, else on SQLite sized to its time budget (a webhook that comes waits for its write
        lock), else of the full batch size. ``claim`` hears when its claim returned."""
        claim = claim or _Claim()
        try:
            return await self._set_based_batch(claim)
        finally:
            claim.returned.set()  # also when it failed before its claim

    async def _set_based_batch(self, claim: _Claim) -> tuple[int, bool]:
        if self._pacing is not None:
            # Outside the transaction and its timing, for what the batches finished since the
            # engine last paced cost (with lanes, more than one).
            worked, self._worked = self._worked, None if self._worked is None else 0.0
            await self._pacing.pace_engine(worked, stop=self._loop.stopped)
        storm = self._pacing.engine_rows() if self._pacing is not None else None
        budget = self._sqlite_budget if self._db.is_sqlite and storm is None else None
        if storm is not None:
            limit = min(self._batch_size, storm)
        elif budget is not None:
            limit = min(self._batch_size, self._sized)
        else:
            limit = self._batch_size
        started, started_ns = time.monotonic(), time.time_ns()
        # The batch's own CPU: the webhooks the loop serves while it waits are not its work.
        cpu = CpuMeter()
        # What the opening listeners did in each attempt: only the last one committed.
        attempts: list[list[AfterCommit]] = []

        async def transaction(opening: bool) -> tuple[_Pass, bool]:
            return await cpu.run(
                in_transaction(
                    self._db,
                    lambda session: self._set_based_in(session, limit, attempts, claim, opening),
                    what="batch",
                )
            )

        try:
            try:
                done, more = await transaction(opening=True)
            except OpeningFailed as failed:
                # Rolled back whole (no savepoint): the batch again, the listeners' work left
                # to their usual path after the commit.
                log.warning("%s; the batch is redone without it", failed, exc_info=True)
                done, more = await transaction(opening=False)
        except BaseException:
            _tell(attempts, committed=False)
            raise
        _tell(attempts, committed=True)
        committed = time.monotonic()
        if attempts and attempts[-1]:
            # It wrote control values (the first mitigations): OFREP's waiting evaluations
            # are answered with them before the batch's bookkeeping goes on.
            await let_waiting_requests_in()
        processed = len(done.processed)
        if budget is not None and processed == limit:
            # A transaction's time is mostly its statements' round trips, not its rows: size
            # the next one from how this one compared with the budget, at most halving or
            # doubling at a time (one slow commit on a busy machine must not shrink them to 1).
            # On SQLite what webhooks wait for is the write lock, held from before the batch's
            # claim to the commit.
            elapsed = max(committed - (done.locked_at or started), 1e-6)
            wanted = int(limit * budget / elapsed)
            self._sized = max(self._min_rows, limit // 2, min(wanted, 2 * limit, self._batch_size))
            if budget == 0:
                self._sized = 1
        await cpu.run(self._committed(done, started_ns))
        # What the webhooks waited for: the batch's CPU on the loop, or SQLite's write lock if
        # longer. (The thread's CPU around it also counted the webhooks served during the
        # batch's waits, most of a PostgreSQL batch's time: the engine rested for them too.)
        cost = cpu.seconds
        if done.locked_at is not None:
            cost = max(cost, committed - done.locked_at)
        self._worked = (self._worked or 0.0) + cost
        return processed, more

    async def _set_based_in(
        self,
        session: AsyncSession,
        limit: int,
        attempts: list[list[AfterCommit]],
        claim: _Claim,
        opening: bool,
    ) -> tuple[_Pass, bool]:
        """The batch's work in ``session``: what it did, and whether more rows wait (it claims
        one row more than it processes to know, so that no transaction is spent on none).
        ``attempts`` gets what the opening listeners did in this attempt (``opening``: whether
        they are called); ``claim`` hears what its claim found (the next lane may start)."""
        locked_at = None
        if self._db.is_sqlite:
            # SQLite's write lock before the claim: from here every statement of the batch
            # runs without a thread hop (bot.store.sqlite_driver); an empty claim holds it for
            # a moment only.
            await incident_batch.take_write_lock(session)
            locked_at = time.monotonic()
        rows = await incident_batch.claim(session, limit + 1)
        more = len(rows) > limit
        claim.found(more)
        rows = rows[:limit]
        if self._pacing is not None and rows:
            oldest = min(row.received_at for row in rows)
            self._pacing.engine_lag((self._clock() - oldest).total_seconds())
        done = await run_batch(
            session,
            rows,
            self._route,
            clock=self._clock,
            reopen_window=self._reopen_window,
            title=self._title,
            seen=self._seen,
        )
        done.locked_at = locked_at
        heard: list[AfterCommit] = []
        attempts.append(heard)
        opened = [change for change in done.changes.values() if change.opened is not None]
        for listener in self._opening if opened and opening else ():
            after = await listener.incidents_opening(session, opened)
            if after is not None:
                heard.append(after)
        if heard and self._db.is_sqlite and not self._in_storm():
            # Control values OFREP's readers wait for: SQLite's COMMIT on the loop, so they are
            # served the moment it is durable (bot.store.sqlite_driver). In a storm the fsync
            # goes to the thread, and the loop to the webhooks meanwhile.
            await sqlite_driver.commit_on_loop(await session.connection())
        return done, more

    def _in_storm(self) -> bool:
        return self._pacing is not None and self._pacing.engine_rows() is not None

    async def _batch_in(self, session: AsyncSession, budget: float | None) -> tuple[_Pass, int]:
        """The batch's work in ``session``: what it did, and how many rows it claimed."""
        done = _Pass()
        rows = await inbox.claim(session, self._batch_size, self._pacing)
        done.traceparents = {row.traceparent for row in rows if row.traceparent}
        # Key order: replicas then take incident locks in the same order, which keeps them
        # from deadlocking; rows of one key keep their arrival order.
        routed = sorted(((self._route(row.labels), row) for row in rows), key=lambda p: p[0].key)
        deadline = None if budget is None else time.monotonic() + budget
        for routing, row in routed:
            if done.processed and deadline is not None and time.monotonic() > deadline:
                break  # the rest stay in the inbox for the next transaction
            await self._process_row(session, routing, row, done)
        await inbox.mark_processed(session, done.processed)
        return done, len(rows)

    async def _committed(self, done: _Pass, started_ns: int) -> None:
        """After a batch committed: count it, then tell the listeners, in the batch's span.

        The span is made after the commit, with the batch's start time, so that the engine's
        empty polls make none; it links to the webhooks whose rows it processed (their
        ``traceparent``s), and each incident change gets a child span whose context the
        listeners continue (auto mitigations, the Slack message).
        """
        self._account(done)
        if not (telemetry.enabled() and done.processed):
            await self._publish(done.changes)
            return
        links = [link for link in map(telemetry.link, sorted(done.traceparents)) if link]
        with telemetry.span(
            names.ENGINE_BATCH,
            {names.ALERTS_PROCESSED: len(done.processed)},
            links=links[:MAX_LINKS],
            start_time=started_ns,
        ):
            for change in done.changes.values():
                kinds = ",".join(sorted(change.kinds)) or ChangeKind.UPDATED.value
                main = next((k for k in _SPAN_KINDS if k in change.kinds), ChangeKind.UPDATED)
                with telemetry.span(
                    f"{names.INCIDENT} {main.value}",
                    {
                        names.INCIDENT_ID: change.incident_id,
                        names.RUNBOOK_ID: change.runbook_id,
                        names.INCIDENT_CHANGE: kinds,
                    },
                ):
                    change.traceparent = telemetry.traceparent()
            await self._publish(done.changes)

    def _account(self, done: _Pass) -> None:
        """Count what a committed pass did (never what a rolled-back attempt did)."""
        for outcome, count in done.outcomes.items():
            self._metrics.alerts_processed.labels(outcome).inc(count)
        if done.unmatched:
            self._metrics.alerts_unmatched.inc(done.unmatched)
        if done.errors:
            self._metrics.engine_errors.inc(done.errors)

    async def _process_row(
        self, session: AsyncSession, routing: Routing, row: InboxAlert, done: _Pass
    ) -> None:
        now = self._clock()
        try:
            outcome, incident_id = await self._apply(session, routing, row, now, done.changes)
        except SQLAlchemyError:
            raise  # the transaction is gone; the batch is retried or fails as a whole
        except Exception:
            # A row that cannot be processed must not block the ones behind it forever.
            log.exception("could not process stored alert %s (%s)", row.id, row.fingerprint)
            done.errors += 1
            outcome, incident_id = AlertOutcome.ERROR, None
        if routing.runbook is None and outcome is not AlertOutcome.STALE:
            done.unmatched += 1
        done.processed.append(inbox.Processed(row.id, now, outcome, incident_id))
        done.outcomes[outcome] += 1

    async def _apply(
        self,
        session: AsyncSession,
        routing: Routing,
        row: InboxAlert,
        now: datetime,
        changes: dict[int, IncidentChange],
    ) -> tuple[AlertOutcome, int | None]:
        firing = row.status == AlertStatus.FIRING
        if firing and await inbox.resolved_state_exists(session, row.fingerprint, row.starts_at):
            return AlertOutcome.STALE, None
        incident = await repo.find_open(session, routing.key, lock=True)
        if incident is None and not firing:
            # The incident may have been resolved by hand while this alert still fired: its
            # resolve still belongs there (state, counts, timeline), without re-opening it.
            incident = await repo.latest_holding(session, routing.key, row.fingerprint, lock=True)
            if incident is None:
                return AlertOutcome.RESOLVED_WITHOUT_INCIDENT, None
        elif incident is None:
            incident = await self._open(session, routing, row, now, changes)
        change = changes.setdefault(
            incident.id, IncidentChange(incident.id, runbook_id=incident.runbook_id)
        )
        outcome = await merge_alert(session, incident, row, now, change)
        if row.truncated_alerts:
            change.notes.append(
                Note(
                    f"the source left out {row.truncated_alerts} alert(s) of this group "
                    "(max_alerts); they are not treated as resolved"
                )
            )
        incident.detected_at = min(incident.detected_at, row.starts_at)
        incident.updated_at = now
        if incident.firing_count == 0 and IncidentStatus(incident.status).is_open:
            mark_resolved(session, incident, now, actor=row.source, reason="all alerts resolved")
            change.kinds.add(ChangeKind.RESOLVED)
        return outcome, incident.id

    def _route(self, labels: dict[str, Any]) -> Routing:
        catalog = self._catalog.current  # one snapshot: the runbook and its commit agree
        memo = self._routes
        if memo is None or memo.catalog is not catalog:
            memo = self._routes = RouteMemo(catalog, functools.partial(route_in, catalog))
        return memo.route(labels)

    async def _open(
        self,
        session: AsyncSession,
        routing: Routing,
        row: InboxAlert,
        now: datetime,
        changes: dict[int, IncidentChange],
    ) -> Incident:
        previous = await repo.latest_for_key(session, routing.key)
        if (
            previous is not None
            and previous.resolved_at is not None
            and now - previous.resolved_at <= self._reopen_window
        ):
            previous.status = IncidentStatus.TRIGGERED.value
            previous.open_key = routing.key
            previous.resolved_at = None
            previous.resolved_by = None
            previous.reopen_count += 1
            previous.updated_at = now
            await session.flush()
            repo.append_timeline(
                session,
                previous.id,
                at=now,
                actor=SYSTEM_ACTOR,
                kind=TimelineKind.REOPENED,
                summary=f"Re-opened: {row.labels.get('alertname', 'alert')} fired again "
                f"within {self._reopen_window} of the resolve",
                details={"fingerprint": row.fingerprint, "reopen_count": previous.reopen_count},
            )
            changes.setdefault(
                previous.id, IncidentChange(previous.id, runbook_id=previous.runbook_id)
            ).kinds.add(ChangeKind.REOPENED)
            if routing.runbook is not None:
                await schedule_escalations(session, previous, routing.runbook, now)
            return previous

        title, title_problem = self._title(routing, row)
        runbook = routing.runbook
        incident = Incident(
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
            reopen_count=0,
            updated_at=now,
        )
        session.add(incident)
        await session.flush()
        summary = f"Opened from {row.source} alert {row.labels.get('alertname', '?')}, " + (
            f"runbook {runbook.id}" if runbook else "no runbook matched (triage)"
        )
        repo.append_timeline(
            session,
            incident.id,
            at=now,
            actor=SYSTEM_ACTOR,
            kind=TimelineKind.OPENED,
            summary=summary,
            details={"runbook_id": incident.runbook_id, "group_labels": routing.group_labels},
        )
        if title_problem:
            repo.append_timeline(
                session,
                incident.id,
                at=now,
                actor=SYSTEM_ACTOR,
                kind=TimelineKind.TITLE_FALLBACK,
                summary=f"Runbook title did not render ({title_problem}); used a plain title",
            )
        changes.setdefault(
            incident.id, IncidentChange(incident.id, runbook_id=incident.runbook_id)
        ).kinds.add(ChangeKind.OPENED)
        if runbook is not None:
            await schedule_escalations(session, incident, runbook, now)
        return incident

    def _title(self, routing: Routing, row: AlertFacts) -> tuple[str, str | None]:
        alertname = str(row.labels.get("alertname", "alert"))
        runbook = routing.runbook
        if runbook is None:
            return f"Untriaged alert: {alertname}", None
        try:
            return render_template(runbook.title, template_context(row)), None
        except TemplateError as err:
            return f"{alertname} ({runbook.id})", str(err)

    async def _publish(self, changes: dict[int, IncidentChange]) -> None:
        if not changes or not self._listeners:
            return
        batch = list(changes.values())
        for listener in self._listeners:
            try:
                await listener.incidents_changed(batch)
            except Exception:
                log.exception("listener %r failed on %d incident change(s)", listener, len(batch))


class _Claim:
    """When a batch's claim returned, and whether it left more rows behind (see
    ``IncidentEngine._in_lanes``). A retried attempt of the transaction tells again."""

    def __init__(self) -> None:
        self.returned = asyncio.Event()
        self.more = False

    def found(self, more: bool) -> None:
        self.more = more
        self.returned.set()


def _tell(attempts: list[list[AfterCommit]], *, committed: bool) -> None:
    """Tell the opening listeners' work of each attempt its fate: the last one's is committed
    when the transaction was; every earlier attempt's was rolled back."""
    for number, heard in enumerate(attempts, start=1):
        for after in heard:
            if committed and number == len(attempts):
                after.committed()
            else:
                after.rolled_back()
