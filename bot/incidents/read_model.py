"""An incident as every front end shows it: the API's JSON, Slack, the CLI, the postmortem.

Read models only: built from the stored rows (``.of``) or by :mod:`bot.incidents.detail`, never
written back. Field names are a contract with integrations (they are the API's JSON), and so
are the class names (they name the OpenAPI schemas).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from bot.incidents.phases import phase_durations
from bot.store.tables import Incident, IncidentAlert, TimelineEntry


class IncidentSummary(BaseModel):
    id: int
    runbook_id: str | None
    status: str
    title: str
    severity: str
    service: str | None
    group_labels: dict[str, str]
    alert_count: int
    firing_count: int
    opened_at: datetime
    detected_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    resolved_at: datetime | None
    resolved_by: str | None
    reopen_count: int
    phases_seconds: dict[str, float]

    @classmethod
    def of(cls, incident: Incident) -> IncidentSummary:
        return cls(
            id=incident.id,
            runbook_id=incident.runbook_id,
            status=incident.status,
            title=incident.title,
            severity=incident.severity,
            service=incident.service,
            group_labels=incident.group_labels,
            alert_count=incident.alert_count,
            firing_count=incident.firing_count,
            opened_at=incident.opened_at,
            detected_at=incident.detected_at,
            acknowledged_at=incident.acknowledged_at,
            acknowledged_by=incident.acknowledged_by,
            resolved_at=incident.resolved_at,
            resolved_by=incident.resolved_by,
            reopen_count=incident.reopen_count,
            phases_seconds={k: v.total_seconds() for k, v in phase_durations(incident).items()},
        )


class AlertOut(BaseModel):
    fingerprint: str
    status: str
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: datetime
    ends_at: datetime | None
    generator_url: str | None
    source: str

    @classmethod
    def of(cls, alert: IncidentAlert) -> AlertOut:
        return cls(
            fingerprint=alert.fingerprint,
            status=alert.status,
            labels=alert.labels,
            annotations=alert.annotations,
            starts_at=alert.starts_at,
            ends_at=alert.ends_at,
            generator_url=alert.generator_url,
            source=alert.source,
        )


class TimelineOut(BaseModel):
    at: datetime
    actor: str
    kind: str
    summary: str
    details: dict[str, Any]

    @classmethod
    def of(cls, entry: TimelineEntry) -> TimelineOut:
        return cls(
            at=entry.at,
            actor=entry.actor,
            kind=entry.kind,
            summary=entry.summary,
            details=entry.details,
        )


NOT_RUN = "not_run"
"""``MitigationOut.state`` of a mitigation with no execution yet (else an ``ExecutionState``)."""


class MitigationOut(BaseModel):
    id: str
    title: str
    action: str
    mode: str
    risk: str | None
    preview: str | None
    reversible: bool | None
    state: str  # NOT_RUN, or the ExecutionState of its latest execution
    requested_by: str | None = None
    approvals: list[str] = []
    applied_at: datetime | None = None
    undone_at: datetime | None = None
    undone_by: str | None = None
    before: Any = None
    after: Any = None
    error: str | None = None


class IncidentDetail(IncidentSummary):
    alerts: list[AlertOut]
    timeline: list[TimelineOut]
    mitigations: list[MitigationOut]
