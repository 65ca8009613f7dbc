"""Runs the ``auto`` mitigations of incidents the engine just opened or re-opened.

Each incident's mitigations run in their own task, so a slow control plane never holds up
the processing of incoming alerts; ``drain`` waits for them (shutdown, tests).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from bot import telemetry
from bot.execution.executor import FirstWritten, MitigationExecutor
from bot.incidents.changes import AfterCommit, ChangeKind, IncidentChange, OpeningFailed
from bot.store.transient import is_transient
from bot.telemetry import names

log = logging.getLogger(__name__)


class AutoMitigator:
    def __init__(self, executor: MitigationExecutor) -> None:
        self._executor = executor
        self._tasks: set[asyncio.Task[None]] = set()
        # First mitigations claimed and written in the engine's committed transaction, by
        # incident, until their run records them.
        self._written: dict[int, FirstWritten] = {}

    async def incidents_opening(
        self, session: AsyncSession, changes: Sequence[IncidentChange]
    ) -> AfterCommit | None:
        """In the engine's transaction: claim and write each new incident's first auto
        mitigation where it sets a control in the built-in store (``claim_first_in``).

        Never the batch's failure: if one fails, what this transaction holds of it cannot be
        told from the rest (no savepoint), so the engine redoes the batch without this
        listener (:class:`OpeningFailed`) and every new incident's mitigations run after the
        commit, the usual way (retried, journaled). A transient database error is raised as
        it is: the engine redoes the batch whole."""
        written: dict[int, FirstWritten] = {}
        for change in changes:
            if change.opened is None or not self._executor.auto_mitigations(change.runbook_id):
                continue
            try:
                first = await self._executor.claim_first_in(
                    session, change.incident_id, change.opened
                )
            except Exception as err:
                for done in written.values():
                    done.rolled_back()
                if isinstance(err, SQLAlchemyError) and is_transient(err):
                    raise
                raise OpeningFailed(
                    f"the first auto mitigation of #{change.incident_id} failed in the "
                    f"engine's transaction ({type(err).__name__}: {err})"
                ) from err
            if first is not None:
                written[change.incident_id] = first
        return _Claimed(self._written, written) if written else None

    async def incidents_changed(self, changes: list[IncidentChange]) -> None:
        for change in changes:
            # An opened or re-opened incident's change names its runbook (the engine's, the
            # only source of those kinds): one without auto mitigations (triage, most storms of
            # distinct alerts) costs no task and no read. One whose first mitigation the
            # engine's transaction wrote is always run (to record it).
            opened = change.kinds & {ChangeKind.OPENED, ChangeKind.REOPENED}
            if change.incident_id in self._written or (
                opened and self._executor.auto_mitigations(change.runbook_id)
            ):
                task = asyncio.create_task(self._run(change))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _run(self, change: IncidentChange) -> None:
        incident_id = change.incident_id
        try:
            # Continues the engine's span of the change (bot.telemetry): alert → mitigation.
            with telemetry.span(
                names.AUTO_MITIGATIONS,
                {names.INCIDENT_ID: incident_id, names.RUNBOOK_ID: change.runbook_id},
                parent=change.traceparent,
            ):
                written = self._written.pop(incident_id, None)
                await self._executor.run_auto(incident_id, change.opened, written)
        except Exception:
            log.exception("auto mitigations of incident #%d failed", incident_id)

    async def drain(self, grace: float | None = None) -> None:
        """Wait for the runs in flight; after ``grace`` seconds cancel what is left (its
        execution's lease is handed back, and another replica finishes it)."""
        try:
            async with asyncio.timeout(grace):
                while self._tasks:
                    await asyncio.gather(*list(self._tasks), return_exceptions=True)
        except TimeoutError:
            left = list(self._tasks)
            log.warning("cancelling %d auto mitigation run(s) at shutdown", len(left))
            for task in left:
                task.cancel()
            await asyncio.gather(*left, return_exceptions=True)


class _Claimed:
    """The first mitigations one engine transaction claimed and wrote: once it committed, the
    OFREP copy takes their values and their runs (started by the change) record them."""

    def __init__(self, pending: dict[int, FirstWritten], written: dict[int, FirstWritten]) -> None:
        self._pending = pending
        self._written = written

    def committed(self) -> None:
        self._pending.update(self._written)  # the copy took their values at the commit

    def rolled_back(self) -> None:
        for first in self._written.values():
            first.rolled_back()
