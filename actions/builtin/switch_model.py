"""Point a service at another model version, e.g. off a degraded provider or a bad release."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from actions.backends.base import FlagValue
from actions.base import ActionParams, Risk, service_field
from actions.builtin.control_action import ControlAction
from actions.context import ActionContext
from actions.controls import model_key


class SwitchModelParams(ActionParams):
    service: str = service_field()
    model: str = Field(min_length=1, max_length=200, description="Model id the app will use.")


class SwitchModel(ControlAction[SwitchModelParams]):
    name = "switch_model"
    params_model: ClassVar[type[ActionParams]] = SwitchModelParams
    summary = "Switch the model version a service uses (sets <service>.model)."

    def risk(self, params: SwitchModelParams, current: str | None = None) -> Risk:
        # A different model changes every answer; someone should look before it ships.
        return Risk.MEDIUM

    def describe(self, params: SwitchModelParams) -> str:
        return f"Switch {params.service} to model {params.model!r} ({model_key(params.service)})"

    def control_key(self, params: SwitchModelParams) -> str:
        return model_key(params.service)

    async def target(self, params: SwitchModelParams, ctx: ActionContext) -> tuple[str, FlagValue]:
        return model_key(params.service), params.model
