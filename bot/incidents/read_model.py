"""An incident as every front end shows it: the API's JSON, Slack, the CLI, the postmortem.

Read models only: built from the stored rows (``model_validate(row)``, reading attributes) or
by :mod:`bot.incidents.detail`, never written back. Field names are a contract with
integrations (they are the API's JSON), and so are the class names (they name the OpenAPI
schemas).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

from bot.incidents.phases import phase_durations
from bot.store.tables import Incident


class IncidentSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    runbook_id: str | None
    runbook_revision: str | None = None  # the git commit it was matched under (runbooks.git)
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

    @model_validator(mode="before")
    @classmethod
    def _phases_of_row(cls, data: Any) -> Any:
        """A stored row has no ``phases_seconds``: it is derived from the row's timestamps."""
        return _WithPhases(data) if isinstance(data, Incident) else data


class _WithPhases:
    """An incident row as ``from_attributes`` reads it, with its derived ``phases_seconds``
    (which need ``mitigated_at``, a column the summary does not show)."""

    def __init__(self, row: Incident) -> None:
        self._row = row
        self.phases_seconds = {k: v.total_seconds() for k, v in phase_durations(row).items()}

    def __getattr__(self, name: str) -> Any:  # only for what __init__ did not set
        return getattr(self._row, name)


class AlertOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    fingerprint: str
    status: str
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: datetime
    ends_at: datetime | None
    generator_url: str | None
    source: str


class TimelineOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    at: datetime
    actor: str
    kind: str
    summary: str
    details: dict[str, Any]


NOT_RUN = "not_run"
"""``MitigationOut.state`` of a mitigation with no execution yet (else an ``ExecutionState``)."""

# The execution states the read models ask about. ``bot.execution`` owns them (ExecutionState)
# and sits below this package, so they are named here; tests/test_enums.py keeps them equal.
AWAITING_APPROVAL = "awaiting_approval"
UNDONE = "undone"
FAILED = "failed"


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
    verdict: str | None = None  # of its latest run's verification, when it has one
    verified: str | None = None  # that verification's summary (values before → after)
    # The exact control change an approval (stored with the request) or a run now would make
    # (a ControlPlan: key, before, after, and where a `to: previous` target was found).
    plan: dict[str, Any] | None = None
    plan_error: str | None = None  # why that change cannot be told now


class CheckValueOut(BaseModel):
    """One verify check: the query as sent, its condition, the values before and after."""

    name: str
    query: str
    condition: str
    before: float | None
    after: float | None
    verdict: str
    reason: str | None = None


class VerificationOut(BaseModel):
    """Did a mitigation work: the verdict of one run's verification (timeline kind
    ``mitigation_verified``)."""

    mitigation_id: str
    generation: int
    verdict: str  # recovered | not_recovered | worse | unknown
    checked_at: datetime
    values: list[CheckValueOut]


class ChangeOut(BaseModel):
    """A change to the incident's service from the change log, ranked: kinds the runbook names
    as likely causes first, then the closest in time to the first alert."""

    id: int
    service: str
    kind: str
    version: str
    previous: str | None
    by: str
    link: str | None
    note: str
    at: datetime
    source: str
    likely_cause: bool
    minutes_before: float  # before the first alert; negative: went live during the incident


class PanelOut(BaseModel):
    """One panel of a scorecard snapshot; ``value`` is None when Prometheus could not say."""

    name: str
    value: float | None
    unit: str
    good: str  # up | down
    scale: float = 1.0  # multiplied for display (100: a ratio shown in %)
    reason: str | None = None

    @property
    def shown(self) -> str:
        return panel_value(self.value, self.unit, self.scale)


def panel_value(value: float | None, unit: str, scale: float = 1.0) -> str:
    """A scorecard value for people: ``31%``, ``2.1 s``, ``?`` when unknown."""
    if value is None:
        return "?"
    text = f"{value * scale:.4g}"
    return f"{text}{unit}" if unit in ("%", "") else f"{text} {unit}"


def panel_trend(before: float | None, after: float | None, good: str) -> str:
    """``better``, ``worse`` or ``same`` since ``before``; ``""`` when either is unknown."""
    if before is None or after is None:
        return ""
    if after == before:
        return "same"
    return "better" if (after < before) == (good == "down") else "worse"


class ScorecardOut(BaseModel):
    """A snapshot of the service's scorecard (timeline kind ``scorecard``): at ``open``, after
    a ``verification``, at ``resolve``."""

    moment: str
    label: str
    taken_at: datetime
    panels: list[PanelOut]


class TraceLink(BaseModel):
    """A trace search for the incident (``traces:`` in ballast.yaml); ``url`` is None when the
    template needs a value the incident lacks, and ``note`` says which. ``trace_id``: an
    example trace of the failing requests (an exemplar of the alert's PromQL), linked through
    the ``trace_url`` template when there is one."""

    title: str
    url: str | None
    note: str | None = None
    trace_id: str | None = None


class IncidentDetail(IncidentSummary):
    runbook_url: str | None = None  # the runbook file at runbook_revision (runbooks.web_url)
    alerts: list[AlertOut]
    timeline: list[TimelineOut]
    # Left out by the request's limits (``alerts_limit``, ``alert_entries_limit``): 0 when
    # every alert and every entry is here.
    alerts_omitted: int = 0
    timeline_omitted: int = 0
    mitigations: list[MitigationOut]
    changes: list[ChangeOut] = []
    verifications: list[VerificationOut] = []
    scorecards: list[ScorecardOut] = []
    traces: list[TraceLink] = []
