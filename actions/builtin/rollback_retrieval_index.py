"""Point retrieval back at a known-good index after a bad or stale index rollout."""

from __future__ import annotations

from typing import ClassVar

from actions.backends.base import FlagValue
from actions.base import ActionParams, Risk
from actions.builtin.control_action import ControlAction
from actions.builtin.rollback_prompt import RollbackParams, plan_version
from actions.context import ActionContext, ControlPlan
from actions.controls import retrieval_index_key


class RollbackRetrievalIndex(ControlAction[RollbackParams]):
    name = "rollback_retrieval_index"
    params_model: ClassVar[type[ActionParams]] = RollbackParams
    summary = "Roll back the retrieval index a service reads (sets <service>.retrieval_index)."

    def risk(self, params: RollbackParams, current: str | None = None) -> Risk:
        return Risk.MEDIUM

    def describe(self, params: RollbackParams) -> str:
        key = retrieval_index_key(params.service)
        return (
            f"Roll back the retrieval index of {params.service} to {params.target_text()} ({key})"
        )

    def control_key(self, params: RollbackParams) -> str:
        return retrieval_index_key(params.service)

    async def plan(self, params: RollbackParams, ctx: ActionContext) -> ControlPlan:
        key = retrieval_index_key(params.service)
        return await plan_version(params.service, key, params.to, ctx)

    async def target(self, params: RollbackParams, ctx: ActionContext) -> tuple[str, FlagValue]:
        plan = await self.plan(params, ctx)
        return plan.key, plan.after
