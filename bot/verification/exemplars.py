"""Example traces of the failing requests: exemplars of the alert's PromQL, in the timeline.

When an incident opens (and again when it resolves), the alert's expression — Prometheus puts
it in the Alertmanager alert's ``generatorURL`` as ``g0.expr`` — is asked for its exemplars
between ``before`` the detection and now (``/api/v1/query_exemplars``). The trace ids found
are written once per incident and moment as an ``exemplars`` timeline entry, which the
incident's ``traces`` (API, Slack, postmortem) show as links through ``trace_url``
(:mod:`bot.incidents.traces`). Only services with a ``traces:`` link that wants exemplars are
asked. Prometheus runs in a task, never in the engine's way: one that is down, slow or has no
exemplar storage gives nothing, and the incident goes on without examples.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlsplit

from bot.incidents.changes import ChangeBus, ChangeKind, IncidentChange
from bot.incidents.timeline import SYSTEM_ACTOR, TimelineKind
from bot.incidents.traces import TraceLinks
from bot.store import incidents as repo
from bot.store.database import Database
from bot.verification.prometheus import Exemplar, PrometheusClient

log = logging.getLogger(__name__)

EXPRESSION_PARAM = "g0.expr"  # Prometheus's graph link: the rule's expression
_EXPR_LIMIT = 300


def promql_of(generator_url: str | None) -> str | None:
    """The PromQL in a Prometheus ``generatorURL`` (``/graph?g0.expr=…``), or None."""
    if not generator_url:
        return None
    try:
        values = parse_qs(urlsplit(generator_url).query).get(EXPRESSION_PARAM)
    except ValueError:
        return None
    expr = values[0].strip() if values else ""
    return expr or None


class ExemplarRecorder:
    """Listens for opened, re-opened and resolved incidents (see the module docstring)."""

    def __init__(
        self,
        db: Database,
        traces: TraceLinks,
        clients: Callable[[str | None], PrometheusClient | None],
        bus: ChangeBus,
        *,
        clock: Callable[[], datetime],
        before: timedelta = timedelta(minutes=15),
    ) -> None:
        self._db = db
        self._traces = traces
        self._clients = clients
        self._bus = bus
        self._clock = clock
        self._before = before
        self._tasks: set[asyncio.Task[None]] = set()

    async def incidents_changed(self, changes: list[IncidentChange]) -> None:
        for change in changes:
            if ChangeKind.RESOLVED in change.kinds:
                moment = "resolve"
            elif change.kinds & {ChangeKind.OPENED, ChangeKind.REOPENED}:
                moment = "open"
            else:
                continue
            task = asyncio.create_task(self._guarded(change.incident_id, moment))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _guarded(self, incident_id: int, moment: str) -> None:
        try:
            await self.record(incident_id, moment)
        except Exception:
            log.exception("exemplars (%s) of #%d failed", moment, incident_id)

    async def record(self, incident_id: int, moment: str) -> int:
        """Look for the incident's exemplars and journal them; returns how many were new."""
        async with self._db.sessions() as session:
            incident = await repo.get(session, incident_id)
            wanted = self._traces.exemplars_wanted(incident.service)
            first = await repo.first_alert_of(session, incident_id) if wanted else None
        client = self._clients(incident.service)
        expr = promql_of(first.generator_url) if first is not None else None
        if client is None or expr is None:
            return 0
        end = incident.resolved_at or self._clock()
        reading = await client.query_exemplars(expr, incident.detected_at - self._before, end)
        if reading.reason is not None:
            log.info("no exemplars for incident #%d: %s", incident_id, reading.reason)
            return 0
        found: dict[str, Exemplar] = {}
        for exemplar in reading.exemplars:
            found.setdefault(exemplar.trace_id, exemplar)
        chosen = list(found.values())[:wanted]
        if not chosen:
            return 0
        key = f"{moment}:{incident.reopen_count}"
        shown = expr if len(expr) <= _EXPR_LIMIT else expr[: _EXPR_LIMIT - 1] + "…"
        async with self._db.transaction() as session:
            await repo.get(session, incident_id, lock=True)
            entries = await repo.timeline_of(session, incident_id, kinds=[TimelineKind.EXEMPLARS])
            if any(e.details.get("key") == key for e in entries):
                return 0
            repo.append_timeline(
                session,
                incident_id,
                at=self._clock(),
                actor=SYSTEM_ACTOR,
                kind=TimelineKind.EXEMPLARS,
                summary=f"Example traces of {shown}: " + ", ".join(e.trace_id for e in chosen),
                details={
                    "key": key,
                    "expr": shown,
                    "exemplars": [
                        {
                            "trace_id": e.trace_id,
                            "at": e.at.isoformat(),
                            "metric": e.series.get("__name__", shown),
                            "value": e.value,
                        }
                        for e in chosen
                    ],
                },
            )
        await self._bus.changed(incident_id, ChangeKind.UPDATED)
        return len(chosen)

    async def drain(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
