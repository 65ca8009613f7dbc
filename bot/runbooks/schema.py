"""The runbook schema: one YAML file, one symptom, everything the responder needs.

Strict on purpose (``extra="forbid"``): a misspelt field is a load error with file:line:col,
not a silently ignored line. Template strings (title, dashboard URLs, params) are kept as
written; :mod:`bot.runbooks.templates` checks and renders them.

Each ``match`` item is read as Alertmanager reads an item of its config's ``matchers:`` list
(``ParseMatchers``): one or more comma-separated matchers, optionally in braces, so
``'alertname="A", service=~"x-.*"'`` is two matchers. A runbook's matchers are all matchers of
all items, and its specificity is how many there are, however they are split into items.
"""

from __future__ import annotations

import itertools
from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PrivateAttr,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from actions.base import Risk
from bot.errors import MatcherSyntaxError
from bot.matching.matcher import Matcher, parse_matchers
from bot.runbooks.conditions import Condition, parse_condition
from bot.runbooks.duration import format_duration, parse_duration

RUNBOOK_ID_PATTERN = r"^[a-z0-9][a-z0-9._-]*(/[a-z0-9][a-z0-9._-]*)*$"
SLUG_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"
LABEL_NAME_PATTERN = r"^[a-zA-Z_][a-zA-Z0-9_]*$"
# A Slack user group handle (@ai-platform-oncall) or a Slack user ID (U024BE7LH / W0123ABC).
OWNER_PATTERN = r"^(@[a-z0-9][a-z0-9._-]*|[UW][A-Z0-9]{2,})$"


def _to_timedelta(value: Any) -> Any:
    return parse_duration(value) if isinstance(value, str) else value


Duration = Annotated[
    timedelta,
    BeforeValidator(_to_timedelta),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^([0-9]+(ms|s|m|h|d|w|y))+$",
            "description": "Prometheus-style duration, e.g. 90s, 10m, 1h30m",
        }
    ),
]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Severity(StrEnum):
    SEV1 = "sev1"
    SEV2 = "sev2"
    SEV3 = "sev3"
    SEV4 = "sev4"


class MitigationMode(StrEnum):
    AUTO = "auto"  # runs at once; only for low-risk actions
    APPROVE = "approve"  # waits for an authorized person (two for high risk)
    MANUAL = "manual"  # a human does it by hand; Ballast only shows it


class ExpectOutcome(StrEnum):
    MATCH = "match"
    NO_MATCH = "no_match"


class Dashboard(StrictModel):
    title: str = Field(min_length=1, max_length=150)
    url: str = Field(min_length=1, description="URL template over labels and annotations.")


class LadderStep(StrEnum):
    """What Ballast does next when a mitigation's verification says it did not help."""

    NEXT = "next"  # run the next mitigation, under its own policy (auto, or ask its owners)
    UNDO = "undo"  # roll this one back
    ESCALATE = "escalate"  # fire the next escalation step now


class VerifyCheck(StrictModel):
    name: str | None = Field(
        default=None, max_length=80, description="What it measures, for people (default: query)."
    )
    query: str = Field(
        min_length=1,
        max_length=4000,
        description='PromQL with one value; label values only inside "…", e.g. '
        'tool="{{ labels.tool }}".',
    )
    condition: str = Field(
        description='"< 0.05", "== 0", "> 0.9", or "lower than before by 50%" / "higher than '
        'before by 20%".'
    )

    @field_validator("condition")
    @classmethod
    def _condition_parses(cls, value: str) -> str:
        parse_condition(value)
        return value

    @property
    def parsed(self) -> Condition:
        return parse_condition(self.condition)

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        return self.query if len(self.query) <= 60 else self.query[:59] + "…"


class Verify(StrictModel):
    checks: list[VerifyCheck] = Field(min_length=1, max_length=10)
    interval: Duration = Field(
        default=timedelta(seconds=30), description="Check this often after the mitigation."
    )
    within: Duration = Field(
        default=timedelta(minutes=5),
        description="Recovered by then, or the verdict is not_recovered (or unknown).",
    )

    @model_validator(mode="after")
    def _times(self) -> Verify:
        if self.interval < timedelta(seconds=1):
            raise ValueError("verify.interval must be at least 1s")
        if self.within < self.interval:
            raise ValueError(
                f"verify.within ({format_duration(self.within)}) must be at least one interval "
                f"({format_duration(self.interval)})"
            )
        return self


class Mitigation(StrictModel):
    id: str = Field(pattern=SLUG_PATTERN, max_length=64)
    title: str = Field(min_length=1, max_length=150)
    action: str = Field(description="Name of a registered action, e.g. disable_tool.")
    params: dict[str, Any] = Field(default_factory=dict)
    mode: MitigationMode = MitigationMode.APPROVE
    min_risk: Literal["low", "medium", "high"] | None = Field(
        default=None,
        description=(
            "Treat it as at least this risky whatever the action rates itself (high: two "
            "different owners approve, e.g. a `to: previous` rollback someone should check)."
        ),
    )
    undo_after: Duration | None = Field(
        default=None, description="Undo automatically this long after it was applied."
    )
    verify: Verify | None = Field(
        default=None, description="How Ballast checks, in Prometheus, that it worked."
    )
    on_not_recovered: LadderStep | None = Field(
        default=None, description="What to do when verification says not_recovered."
    )
    on_worse: LadderStep | None = Field(
        default=None,
        description="What to do when verification says worse (default: undo, for auto).",
    )

    @model_validator(mode="after")
    def _ladder_needs_verify(self) -> Mitigation:
        if self.verify is None and (self.on_not_recovered or self.on_worse):
            raise ValueError("on_not_recovered and on_worse need `verify:` (what to check)")
        return self

    def rated(self, risk: Risk) -> Risk:
        """The action's own rating, raised to ``min_risk``."""
        if self.min_risk is not None and Risk(self.min_risk).rank > risk.rank:
            return Risk(self.min_risk)
        return risk

    @property
    def worse_step(self) -> LadderStep | None:
        """A ``worse`` verdict on an auto mitigation undoes it unless the runbook says else."""
        if self.on_worse is not None:
            return self.on_worse
        return LadderStep.UNDO if self.mode is MitigationMode.AUTO else None


class ScorecardPanel(StrictModel):
    """One signal of a scorecard: a PromQL query with one value, its unit, and which way is
    good (so a change since the incident opened reads as better or worse). Services define
    panels in ballast.yaml; a runbook may add its own."""

    name: str = Field(min_length=1, max_length=60, description="What people read.")
    query: str = Field(min_length=1, max_length=4000, description="PromQL with one value.")
    unit: str = Field(default="", max_length=16, description='e.g. "%", "s", "USD", "req/s".')
    good: Literal["up", "down"] = Field(description="Which way is better: up or down.")
    scale: float = Field(
        default=1.0, description="Multiply the value for display (100 for a ratio shown in %)."
    )


class RunbookScorecard(StrictModel):
    """Which panels this runbook's incidents show: some of the service's (by name, from
    ballast.yaml), then its own. Empty: the service's whole scorecard."""

    show: list[Annotated[str, Field(min_length=1, max_length=60)]] = Field(
        default_factory=list,
        description="Names of panels of the service's scorecard in ballast.yaml, in this order.",
    )
    panels: list[ScorecardPanel] = Field(
        default_factory=list, description="Panels of this runbook's own, shown after those."
    )

    @model_validator(mode="after")
    def _unique_names(self) -> RunbookScorecard:
        names = [*self.show, *(panel.name for panel in self.panels)]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"scorecard panel names must be unique: {', '.join(repeated)}")
        return self

    @property
    def empty(self) -> bool:
        return not self.show and not self.panels


class EscalationStep(StrictModel):
    after: Duration = Field(description="Time since the incident opened, while unacknowledged.")
    notify: list[str] = Field(default_factory=list)
    page: str | None = Field(default=None, pattern=SLUG_PATTERN)

    @model_validator(mode="after")
    def _says_who(self) -> EscalationStep:
        if not self.notify and self.page is None:
            raise ValueError(
                "an escalation step needs `notify` (who to tell) or `page` (who to page)"
            )
        return self


class PostmortemSpec(StrictModel):
    questions: list[str] = Field(default_factory=list)
    reviewers: list[str] = Field(default_factory=list)
    template: str | None = Field(
        default=None, description="Jinja2 template file, relative to the runbook file."
    )


class ExampleAlert(StrictModel):
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)


class RunbookTest(StrictModel):
    alert: ExampleAlert
    expect: ExpectOutcome
    title: str | None = Field(default=None, description="Expected rendered title.")


class Runbook(StrictModel):
    id: str = Field(pattern=RUNBOOK_ID_PATTERN, max_length=200)
    title: str = Field(min_length=1, max_length=300, description="Template for the incident title.")
    service: str = Field(pattern=SLUG_PATTERN, max_length=63)
    severity: Severity
    owners: list[Annotated[str, Field(pattern=OWNER_PATTERN)]] = Field(min_length=1)
    match: list[str] = Field(
        min_length=1,
        description=(
            'Alertmanager matchers, e.g. alertname="X". As in Alertmanager\'s `matchers:`, one '
            'item may hold several, comma-separated: alertname="X", env="prod".'
        ),
    )
    group_by: list[Annotated[str, Field(pattern=LABEL_NAME_PATTERN)]] = Field(default_factory=list)
    symptom: str = Field(min_length=1)
    business_impact: str = Field(min_length=1)
    dashboards: list[Dashboard] = Field(default_factory=list)
    likely_causes: list[str] = Field(default_factory=list)
    mitigations: list[Mitigation] = Field(default_factory=list)
    rollback: str | None = None
    escalation: list[EscalationStep] = Field(default_factory=list)
    postmortem: PostmortemSpec = Field(default_factory=PostmortemSpec)
    scorecard: RunbookScorecard = Field(
        default_factory=RunbookScorecard,
        description="Panels its incidents show instead of the service's whole scorecard.",
    )
    tests: list[RunbookTest] = Field(default_factory=list)

    _matchers: tuple[Matcher, ...] = PrivateAttr(default=())

    @field_validator("match")
    @classmethod
    def _matchers_parse(cls, values: list[str]) -> list[str]:
        for index, text in enumerate(values):
            try:
                parse_match_item(text)
            except MatcherSyntaxError as err:
                raise ValueError(f"match[{index}]: {err}") from None
        return values

    @field_validator("mitigations")
    @classmethod
    def _unique_mitigation_ids(cls, values: list[Mitigation]) -> list[Mitigation]:
        seen: set[str] = set()
        for mitigation in values:
            if mitigation.id in seen:
                raise ValueError(f"duplicate mitigation id {mitigation.id!r}")
            seen.add(mitigation.id)
        return values

    @field_validator("escalation")
    @classmethod
    def _escalation_in_order(cls, values: list[EscalationStep]) -> list[EscalationStep]:
        for earlier, later in itertools.pairwise(values):
            if later.after <= earlier.after:
                raise ValueError(
                    "escalation steps must be in increasing `after` order "
                    f"({format_duration(later.after)} comes after {format_duration(earlier.after)})"
                )
        return values

    def model_post_init(self, context: Any, /) -> None:
        self._matchers = tuple(matcher for text in self.match for matcher in parse_match_item(text))

    @property
    def matchers(self) -> tuple[Matcher, ...]:
        """Every matcher of every ``match`` item, in the order written."""
        return self._matchers

    @property
    def specificity(self) -> int:
        """When several runbooks match, the one with most matchers wins (ties: lowest id).

        Matchers are counted, not ``match`` items: ``['a="1", b="2"']`` counts 2.
        """
        return len(self._matchers)

    def group_labels(self, labels: dict[str, str]) -> dict[str, str]:
        """The label values that key this runbook's open incident (missing labels are '')."""
        return {name: labels.get(name, "") for name in self.group_by}

    def mitigation(self, mitigation_id: str) -> Mitigation | None:
        return next((m for m in self.mitigations if m.id == mitigation_id), None)


def parse_match_item(text: str) -> list[Matcher]:
    """The matchers of one ``match`` item: comma-separated, as Alertmanager's ``ParseMatchers``.

    Unlike Alertmanager, an item with no matcher at all (``""``, ``"{}"``) is an error: it
    would silently make the runbook broader than written.
    """
    matchers = parse_matchers(text)
    if not matchers:
        raise MatcherSyntaxError(
            f'empty matcher {text!r}: expected NAME OP VALUE, e.g. alertname="HighLatency"', text
        )
    return matchers
