"""Route answers through human review. Raising review is low risk; lowering it is not."""

from __future__ import annotations

from typing import ClassVar

from actions.base import Action, ActionParams, Risk, service_field
from actions.controls import HumanReviewLevel, human_review_key

_LEVELS = frozenset(level.value for level in HumanReviewLevel)


class HumanReviewParams(ActionParams):
    service: str = service_field()
    level: HumanReviewLevel


class ForceHumanReview(Action[HumanReviewParams]):
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

    def reversible(self, params: HumanReviewParams) -> bool:
        return True

    def describe(self, params: HumanReviewParams) -> str:
        key = human_review_key(params.service)
        return f"Set human review for {params.service} to {params.level.value} ({key})"
