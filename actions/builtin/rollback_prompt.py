"""Roll a service's prompt back to a known version (by default the one before the current)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from actions.backends.base import FlagValue
from actions.base import ActionParams, Risk, service_field
from actions.builtin.control_action import ControlAction
from actions.context import ActionContext, ControlPlan
from actions.controls import prompt_version_key
from actions.errors import FinalError

PREVIOUS = "previous"


class RollbackParams(ActionParams):
    service: str = service_field()
    to: str = Field(
        default=PREVIOUS,
        min_length=1,
        max_length=200,
        description="Version to return to; 'previous' means the value before the current one.",
    )

    def target_text(self) -> str:
        return "the previous version" if self.to == PREVIOUS else repr(self.to)


async def plan_version(service: str, key: str, to: str, ctx: ActionContext) -> ControlPlan:
    """The change that sets ``key`` to version ``to``: ``previous`` is the value the key had
    before its live one, from its history or the change log, with who shipped what, when.
    The one resolution of ``to: previous``, whether planned for approvers or applied."""
    current = await ctx.backend_for(service).read(key)
    if to != PREVIOUS:
        return ControlPlan(key=key, before=current, after=to)
    previous = await ctx.history.previous(key, current)
    if previous is None:
        raise FinalError(
            f"no earlier value of {key} is recorded (now {current!r}), so 'previous' means "
            "nothing; name the version to return to with `to:`"
        )
    return ControlPlan(
        key=key, before=current, after=previous.value, resolved=previous.explain(current)
    )


class RollbackPrompt(ControlAction[RollbackParams]):
    name = "rollback_prompt"
    params_model: ClassVar[type[ActionParams]] = RollbackParams
    summary = "Roll back a service's prompt version (sets <service>.prompt_version)."

    def risk(self, params: RollbackParams, current: str | None = None) -> Risk:
        return Risk.MEDIUM

    def describe(self, params: RollbackParams) -> str:
        key = prompt_version_key(params.service)
        return f"Roll back the prompt of {params.service} to {params.target_text()} ({key})"

    def control_key(self, params: RollbackParams) -> str:
        return prompt_version_key(params.service)

    async def plan(self, params: RollbackParams, ctx: ActionContext) -> ControlPlan:
        return await plan_version(
            params.service, prompt_version_key(params.service), params.to, ctx
        )

    async def target(self, params: RollbackParams, ctx: ActionContext) -> tuple[str, FlagValue]:
        plan = await self.plan(params, ctx)
        return plan.key, plan.after
