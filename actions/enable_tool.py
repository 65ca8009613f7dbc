"""Turn a tool back on. Re-exposing a tool that was failing needs a human's judgement."""

from __future__ import annotations

from typing import ClassVar

from actions.base import Action, ActionParams, Risk
from actions.disable_tool import ToolParams


class EnableTool(Action[ToolParams]):
    name = "enable_tool"
    params_model: ClassVar[type[ActionParams]] = ToolParams
    summary = "Enable one tool of an AI agent (sets <service>.tools.<tool>.enabled=true)."

    def risk(self, params: ToolParams, current: str | None = None) -> Risk:
        return Risk.MEDIUM

    def reversible(self, params: ToolParams) -> bool:
        return True

    def describe(self, params: ToolParams) -> str:
        return f"Enable tool {params.tool!r} for {params.service} ({params.key} → true)"
