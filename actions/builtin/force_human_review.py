"""Route answers through human review. Raising review is low risk; lowering it is not."""

from __future__ import annotations

from typing import ClassVar

from actions.backends.base import FlagValue
from actions.base import ActionParams, Risk, service_field
from actions.builtin.control_action import ControlAction
from actions.context import ActionContext
from actions.controls import HumanReviewLevel, human_review_key

_LEVELS = frozenset(level.value for level in HumanReviewLevel)


class HumanReviewParams(ActionParams):
    service: str = service_field()
    level: HumanReviewLevel


class ForceHumanReview(ControlAction[HumanReviewParams]):
    name = "force_human_review"
    params_model: ClassVar[type[ActionParams]] = HumanReviewParams
    summary = "Require human review of high-risk answers or of all answers."

    def risk(self, params: HumanReviewParams, current: str | None = None) -> Risk:
        if params.level is HumanReviewLevel.OFF:
            return Risk.HIGH
        lowering = current in _LEVELS and params.level.rank < HumanReviewLevel(current).rank
        if lowering:
            return Risk.MEDIUM
        return Risk.LOW

    def describe(self, params: HumanReviewParams) -> str:
        key = human_review_key(params.service)
        return f"Set human review for {params.service} to {params.level.value} ({key})"

    def control_key(self, params: HumanReviewParams) -> str:
        return human_review_key(params.service)

    async def target(self, params: HumanReviewParams, ctx: ActionContext) -> tuple[str, FlagValue]:
        return human_review_key(params.service), params.level.value
