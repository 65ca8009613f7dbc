"""Page a human through PagerDuty or Opsgenie. Waking someone is safe, and not undoable."""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar

from pydantic import Field

from actions.base import NAME_PATTERN, Action, ActionParams, Risk
from actions.context import ActionContext, ActionOutcome


class PageSeverity(StrEnum):
    CRITICAL = "critical"
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


class PageParams(ActionParams):
    target: str = Field(
        pattern=NAME_PATTERN,
        description="A paging target named in ballast.yaml (PagerDuty service or Opsgenie team).",
    )
    summary: str = Field(min_length=1, max_length=1024)
    severity: PageSeverity = PageSeverity.CRITICAL


class Page(Action[PageParams]):
    name = "page"
    params_model: ClassVar[type[ActionParams]] = PageParams
    summary = "Page an on-call rotation through PagerDuty Events v2 or Opsgenie."

    def risk(self, params: PageParams, current: str | None = None) -> Risk:
        return Risk.LOW

    def reversible(self, params: PageParams) -> bool:
        return False

    def describe(self, params: PageParams) -> str:
        return f"Page {params.target} ({params.severity.value}): {params.summary[:80]}"

    async def apply(self, params: PageParams, ctx: ActionContext) -> ActionOutcome:
        if ctx.dry_run:
            return ActionOutcome(summary=f"dry run: would {self.describe(params)}")
        response = await ctx.pager.page(
            params.target,
            params.summary,
            params.severity.value,
            dedup_key=ctx.idempotency_key,
        )
        return ActionOutcome(summary=f"paged {params.target}", response=response)
