"""Turn a tool back on. Re-exposing a tool that was failing needs a human's judgement."""

from __future__ import annotations

from typing import ClassVar

from actions.backends.base import FlagValue
from actions.base import ActionParams, Risk
from actions.builtin.control_action import ControlAction
from actions.builtin.disable_tool import ToolParams
from actions.context import ActionContext


class EnableTool(ControlAction[ToolParams]):
    name = "enable_tool"
    params_model: ClassVar[type[ActionParams]] = ToolParams
    summary = "Enable one tool of an AI agent (sets <service>.tools.<tool>.enabled=true)."

    def risk(self, params: ToolParams, current: str | None = None) -> Risk:
        return Risk.MEDIUM

    def describe(self, params: ToolParams) -> str:
        return f"Enable tool {params.tool!r} for {params.service} ({params.key} → true)"

    def control_key(self, params: ToolParams) -> str:
        return params.key

    async def target(self, params: ToolParams, ctx: ActionContext) -> tuple[str, FlagValue]:
        return params.key, True
