"""Point a service at another model version, e.g. off a degraded provider or a bad release.

``model:`` names the model; ``to: previous`` (instead) returns to the model before the live one,
from the control history or the change log, like the prompt and index rollbacks.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from actions.backends.base import FlagValue
from actions.base import ActionParams, Risk, service_field
from actions.builtin.control_action import ControlAction
from actions.builtin.rollback_prompt import PREVIOUS, plan_version
from actions.context import ActionContext, ControlPlan
from actions.controls import model_key


class SwitchModelParams(ActionParams):
    service: str = service_field()
    model: str | None = Field(
        default=None, min_length=1, max_length=200, description="Model id the app will use."
    )
    to: Literal["previous"] | None = Field(
        default=None,
        description="'previous': the model before the live one (instead of naming `model`).",
    )

    @model_validator(mode="after")
    def _one_target(self) -> SwitchModelParams:
        if (self.model is None) == (self.to is None):
            raise ValueError("name exactly one of `model` (a model id) or `to: previous`")
        return self

    def target_version(self) -> str:
        return self.model if self.model is not None else PREVIOUS


class SwitchModel(ControlAction[SwitchModelParams]):
    name = "switch_model"
    params_model: ClassVar[type[ActionParams]] = SwitchModelParams
    summary = "Switch the model version a service uses (sets <service>.model)."

    def risk(self, params: SwitchModelParams, current: str | None = None) -> Risk:
        # A different model changes every answer; someone should look before it ships.
        return Risk.MEDIUM

    def describe(self, params: SwitchModelParams) -> str:
        target = "the previous model" if params.model is None else f"model {params.model!r}"
        return f"Switch {params.service} to {target} ({model_key(params.service)})"

    def control_key(self, params: SwitchModelParams) -> str:
        return model_key(params.service)

    async def plan(self, params: SwitchModelParams, ctx: ActionContext) -> ControlPlan:
        key = model_key(params.service)
        return await plan_version(params.service, key, params.target_version(), ctx)

    async def target(self, params: SwitchModelParams, ctx: ActionContext) -> tuple[str, FlagValue]:
        plan = await self.plan(params, ctx)
        return plan.key, plan.after
