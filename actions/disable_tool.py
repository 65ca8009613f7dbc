"""Turn one tool of an AI agent off: the agent answers without it instead of failing with it."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from actions.base import NAME_PATTERN, Action, ActionParams, Risk, service_field
from actions.controls import tool_enabled_key


class ToolParams(ActionParams):
    service: str = service_field()
    tool: str = Field(pattern=NAME_PATTERN, description="Tool name, as in the flag key.")

    @property
    def key(self) -> str:
        return tool_enabled_key(self.service, self.tool)


class DisableTool(Action[ToolParams]):
    name = "disable_tool"
    params_model: ClassVar[type[ActionParams]] = ToolParams
    summary = "Disable one tool of an AI agent (sets <service>.tools.<tool>.enabled=false)."

    def risk(self, params: ToolParams, current: str | None = None) -> Risk:
        return Risk.LOW

    def reversible(self, params: ToolParams) -> bool:
        return True

    def describe(self, params: ToolParams) -> str:
        return f"Disable tool {params.tool!r} for {params.service} ({params.key} → false)"
