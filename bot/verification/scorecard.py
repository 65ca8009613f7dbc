"""The service's scorecard: named panels (PromQL) snapshot at open, after each verification
and at resolve, stored in the timeline (kind ``scorecard``).

An AI service can be "up" while it quietly answers worse, so the scorecard joins
infrastructure and quality signals (latency, errors, tool failures, groundedness, refusals,
cost per task …) in one row of numbers. A snapshot queries every panel as of its moment
(Prometheus's ``time``: the opening, the verdict, the resolve), so when it runs does not change
what it says; a panel Prometheus cannot answer is recorded without a value, with the reason.
Each snapshot is written once per incident and moment (checked under the incident's lock).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import datetime

from bot.config import BallastConfig
from bot.incidents.changes import ChangeBus, ChangeKind, IncidentChange
from bot.incidents.read_model import panel_value
from bot.incidents.timeline import SYSTEM_ACTOR, TimelineKind
from bot.runbooks.catalog import LiveCatalog
from bot.runbooks.schema import ScorecardPanel
from bot.store import incidents as repo
from bot.store.database import Database
from bot.verification.prometheus import PrometheusClient, Reading

log = logging.getLogger(__name__)

NO_PROMETHEUS = "no Prometheus configured (prometheus: in ballast.yaml)"


async def read_panels(
    panels: Sequence[ScorecardPanel], client: PrometheusClient | None, at: datetime | None
) -> list[Reading]:
    """Every panel's value as of ``at`` (None: now), queried at once."""
    if client is None:
        return [Reading(None, NO_PROMETHEUS) for _ in panels]
    return list(await asyncio.gather(*(client.query(panel.query, at=at) for panel in panels)))


def shown(panel: ScorecardPanel, value: float | None) -> str:
    """``31%``, ``2.1 s``: the value scaled for display, with its unit."""
    return panel_value(value, panel.unit, panel.scale)


class ScorecardRecorder:
    """Listens for opened, re-opened and resolved incidents; the verifier calls it too."""

    def __init__(
        self,
        db: Database,
        config: BallastConfig,
        clients: Callable[[str | None], PrometheusClient | None],
        bus: ChangeBus,
        *,
        clock: Callable[[], datetime],
        catalog: LiveCatalog | None = None,
    ) -> None:
        self._db = db
        self._catalog = catalog
        self._config = config
        self._clients = clients
        self._bus = bus
        self._clock = clock
        self._tasks: set[asyncio.Task[None]] = set()

    def panels(self, service: str | None, runbook_id: str | None = None) -> list[ScorecardPanel]:
        """The runbook's choice of panels if it makes one, else the service's scorecard."""
        runbook = None
        if runbook_id is not None and self._catalog is not None:
            runbook = self._catalog.current.runbooks.get(runbook_id)
        return self._config.panels_for(service, runbook)

    def may_have_panels(self, runbook_id: str | None) -> bool:
        """Could an incident of this runbook show panels, whatever its service? Without a
        read: its runbook's own panels, or any service's scorecard in ballast.yaml."""
        if any(service.scorecard for service in self._config.services.values()):
            return True
        runbook = None
        if runbook_id is not None and self._catalog is not None:
            runbook = self._catalog.current.runbooks.get(runbook_id)
        return runbook is not None and bool(runbook.scorecard.panels)

    async def incidents_changed(self, changes: list[IncidentChange]) -> None:
        for change in changes:
            # Opened and re-opened changes come from the engine and name the runbook: an
            # incident that cannot show panels costs no task and no read.
            if change.kinds & {ChangeKind.OPENED, ChangeKind.REOPENED} and self.may_have_panels(
                change.runbook_id
            ):
                # In a task: Prometheus must never hold up the engine's next batch.
                task = asyncio.create_task(self._guarded(change.incident_id, "open", "opened"))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            if ChangeKind.RESOLVED in change.kinds:
                # Awaited: the postmortem (the next listener) shows the "after" column.
                await self._guarded(change.incident_id, "resolve", "resolved")

    async def _guarded(self, incident_id: int, moment: str, label: str) -> None:
        try:
            await self.snapshot(incident_id, moment, label)
        except Exception:
            log.exception("scorecard snapshot (%s) of #%d failed", moment, incident_id)

    async def snapshot(
        self, incident_id: int, moment: str, label: str, at: datetime | None = None
    ) -> bool:
        """Record one snapshot; False when the service has no scorecard or it was recorded."""
        async with self._db.sessions() as session:
            incident = await repo.get(session, incident_id)
        panels = self.panels(incident.service, incident.runbook_id)
        if not panels:
            return False
        if at is None:
            if moment == "open" and incident.reopen_count == 0:
                at = incident.opened_at
            elif moment == "resolve" and incident.resolved_at is not None:
                at = incident.resolved_at
            else:
                at = self._clock()
        key = f"{moment}:{label}:{incident.reopen_count}"
        readings = await read_panels(panels, self._clients(incident.service), at)
        async with self._db.transaction() as session:
            await repo.get(session, incident_id, lock=True)
            entries = await repo.timeline_of(session, incident_id, kinds=[TimelineKind.SCORECARD])
            if any(e.details.get("key") == key for e in entries):
                return False
            text = " · ".join(
                f"{panel.name} {shown(panel, reading.value)}"
                for panel, reading in zip(panels, readings, strict=True)
            )
            repo.append_timeline(
                session,
                incident_id,
                at=self._clock(),
                actor=SYSTEM_ACTOR,
                kind=TimelineKind.SCORECARD,
                summary=f"Scorecard ({label}): {text}",
                details={
                    "key": key,
                    "moment": moment,
                    "label": label,
                    "taken_at": at.isoformat(),
                    "panels": [
                        {
                            "name": panel.name,
                            "value": reading.value,
                            "unit": panel.unit,
                            "good": panel.good,
                            "scale": panel.scale,
                            "reason": reading.reason,
                        }
                        for panel, reading in zip(panels, readings, strict=True)
                    ],
                },
            )
        await self._bus.changed(incident_id, ChangeKind.UPDATED)
        return True

    async def drain(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
