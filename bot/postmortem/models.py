"""The shapes of the facts a postmortem states; templates read these attributes.

Frozen pydantic models, so the JSON format of the API is their dump and a template cannot
change a fact while rendering.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


class Fact(BaseModel):
    model_config = ConfigDict(frozen=True)


class Phase(Fact):
    """One of detect / acknowledge / mitigate / resolve; ``seconds`` None: it never happened."""

    name: str
    seconds: float | None
    start: datetime
    end: datetime | None


class Episode(Fact):
    opened_at: datetime
    resolved_at: datetime | None
    reopened: bool


class Detection(Fact):
    alertname: str | None
    fingerprint: str | None
    signal_started_at: datetime
    opened_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None


class TimelineLine(Fact):
    """One journal entry, or a collapsed run of ``count`` alert entries (``until`` set)."""

    at: datetime
    until: datetime | None
    actor: str
    kind: str
    text: str
    count: int


class ControlChangeFact(Fact):
    key: str
    before: Any
    after: Any


class MitigationFact(Fact):
    id: str
    title: str
    action: str | None
    risk: str | None
    requested_by: str | None
    requested_at: datetime | None
    approvals: list[str]
    applied_at: datetime | None
    applied_by: str | None
    applied_summary: str | None
    change: ControlChangeFact | None
    undone_at: datetime | None
    undone_by: str | None
    undo_summary: str | None
    failures: list[str]
    refusals: list[str]
    done_manually_by: str | None
    dry_runs: int
    resolved_after: int
    first_resolved_after: datetime | None
    refired_after: int


class ControlFact(Fact):
    """A control's value just before the incident opened and when it ended, from the key's
    recorded changes (keys with no recorded change are left out: their value is unknown)."""

    key: str
    name: str
    at_open: Any
    at_end: Any
    changes_during: int


class ScorecardRow(Fact):
    """One scorecard panel: its value when the incident opened (before), after the last
    verification (during) and at resolve (after), as shown to people ("31%", "?")."""

    name: str
    good: str  # up | down
    before: str | None
    during: str | None
    after: str | None
    trend: str  # better | worse | same | "" (after vs before)


class ServiceControls(Fact):
    service: str
    controls: list[ControlFact]
    tools: list[ControlFact]

    @property
    def tools_disabled_at_open(self) -> list[str]:
        return [t.name for t in self.tools if t.at_open is False]

    @property
    def tools_disabled_at_end(self) -> list[str]:
        return [t.name for t in self.tools if t.at_end is False]


class ChangeFact(Fact):
    """A change to the service from the change log: what went live before the first alert
    (from pipelines, people or control writes), and what pipelines shipped during it."""

    kind: str
    version: str
    previous: str | None
    by: str
    link: str | None
    note: str
    at: datetime
    minutes_before: float  # negative: after the first alert
    likely_cause: bool


class RunbookFacts(Fact):
    id: str
    title: str
    symptom: str
    business_impact: str
    likely_causes: list[str]
    questions: list[str]
    reviewers: list[str]
    owners: list[str]
    template: str | None


class TraceLinkFact(Fact):
    """A trace search for the incident's time range (``traces:`` in ballast.yaml)."""

    title: str
    url: str | None
    note: str | None = None
    trace_id: str | None = None  # an exemplar of the alert's PromQL


class PostmortemFacts(Fact):
    incident_id: int
    title: str
    status: str
    severity: str
    service: str | None
    group_labels: dict[str, str]
    alert_count: int
    opened_at: datetime
    resolved_at: datetime | None
    resolved_by: str | None
    reopen_count: int
    detection: Detection
    phases: list[Phase]
    episodes: list[Episode]
    open_seconds: float | None
    timeline: list[TimelineLine]
    timeline_omitted: int
    mitigations: list[MitigationFact]
    services: list[ServiceControls]
    services_without_history: list[str]
    runbook: RunbookFacts | None
    runbook_path: str | None
    changes: list[ChangeFact] = []  # "What changed": recorded changes, likely causes first
    runbook_revision: str | None = None  # the git commit the incident was matched under
    runbook_url: str | None = None  # the runbook file at that commit (runbooks.web_url)
    scorecard: list[ScorecardRow] = []  # before / during / after, from the scorecard snapshots
    traces: list[TraceLinkFact] = []

    def phase(self, name: str) -> Phase:
        return next(p for p in self.phases if p.name == name)
