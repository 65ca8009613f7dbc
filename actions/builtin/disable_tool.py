"""Turn one tool of an AI agent off: the agent answers without it instead of failing with it."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from actions.backends.base import FlagValue
from actions.base import NAME_PATTERN, ActionParams, Risk, service_field
from actions.builtin.control_action import ControlAction
from actions.context import ActionContext
from actions.controls import tool_enabled_key


class ToolParams(ActionParams):
    service: str = service_field()
    tool: str = Field(pattern=NAME_PATTERN, description="Tool name, as in the flag key.")

    @property
    def key(self) -> str:
        return tool_enabled_key(self.service, self.tool)


class DisableTool(ControlAction[ToolParams]):
    name = "disable_tool"
    params_model: ClassVar[type[ActionParams]] = ToolParams
    summary = "Disable one tool of an AI agent (sets <service>.tools.<tool>.enabled=false)."

    def risk(self, params: ToolParams, current: str | None = None) -> Risk:
        return Risk.LOW

    def describe(self, params: ToolParams) -> str:
        return f"Disable tool {params.tool!r} for {params.service} ({params.key} → false)"

    def control_key(self, params: ToolParams) -> str:
        return params.key

    async def target(self, params: ToolParams, ctx: ActionContext) -> tuple[str, FlagValue]:
        return params.key, False
