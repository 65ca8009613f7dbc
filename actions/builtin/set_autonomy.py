"""Change how much an agent may do on its own. Lowering is low risk; raising is not."""

from __future__ import annotations

from typing import ClassVar

from actions.backends.base import FlagValue
from actions.base import ActionParams, Risk, service_field
from actions.builtin.control_action import ControlAction
from actions.context import ActionContext
from actions.controls import AutonomyLevel, autonomy_key

_LEVELS = frozenset(level.value for level in AutonomyLevel)


class AutonomyParams(ActionParams):
    service: str = service_field()
    level: AutonomyLevel


class SetAutonomy(ControlAction[AutonomyParams]):
    name = "set_autonomy"
    params_model: ClassVar[type[ActionParams]] = AutonomyParams
    summary = "Set an agent's autonomy: full, supervised, suggest_only or off."

    def risk(self, params: AutonomyParams, current: str | None = None) -> Risk:
        if params.level is AutonomyLevel.FULL:
            return Risk.HIGH
        raising = current in _LEVELS and params.level.rank > AutonomyLevel(current).rank
        if raising:
            return Risk.MEDIUM
        return Risk.LOW

    def describe(self, params: AutonomyParams) -> str:
        key = autonomy_key(params.service)
        return f"Set autonomy of {params.service} to {params.level.value} ({key})"

    def control_key(self, params: AutonomyParams) -> str:
        return autonomy_key(params.service)

    async def target(self, params: AutonomyParams, ctx: ActionContext) -> tuple[str, FlagValue]:
        return autonomy_key(params.service), params.level.value
