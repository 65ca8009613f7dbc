"""Runs the ``auto`` mitigations of incidents the engine just opened or re-opened.

Each incident's mitigations run in their own task, so a slow control plane never holds up
the processing of incoming alerts; ``drain`` waits for them (shutdown, tests).
"""

from __future__ import annotations

import asyncio
import logging

from bot import telemetry
from bot.execution.executor import MitigationExecutor
from bot.incidents.changes import ChangeKind, IncidentChange
from bot.telemetry import names

log = logging.getLogger(__name__)


class AutoMitigator:
    def __init__(self, executor: MitigationExecutor) -> None:
        self._executor = executor
        self._tasks: set[asyncio.Task[None]] = set()

    async def incidents_changed(self, changes: list[IncidentChange]) -> None:
        for change in changes:
            # An opened or re-opened incident's change names its runbook (the engine's, the
            # only source of those kinds): one without auto mitigations (triage, most storms of
            # distinct alerts) costs no task and no read.
            if change.kinds & {
                ChangeKind.OPENED,
                ChangeKind.REOPENED,
            } and self._executor.auto_mitigations(change.runbook_id):
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
                await self._executor.run_auto(incident_id, change.opened)
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
