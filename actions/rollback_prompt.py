"""Roll a service's prompt back to a known version (by default the one before the current)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from actions.base import Action, ActionParams, Risk, service_field
from actions.controls import prompt_version_key

PREVIOUS = "previous"


class RollbackParams(ActionParams):
    service: str = service_field()
    to: str = Field(
        default=PREVIOUS,
        min_length=1,
        max_length=200,
        description="Version to return to; 'previous' means the value before the current one.",
    )

    def target(self) -> str:
        return "the previous version" if self.to == PREVIOUS else repr(self.to)


class RollbackPrompt(Action[RollbackParams]):
    name = "rollback_prompt"
    params_model: ClassVar[type[ActionParams]] = RollbackParams
    summary = "Roll back a service's prompt version (sets <service>.prompt_version)."

    def risk(self, params: RollbackParams, current: str | None = None) -> Risk:
        return Risk.MEDIUM

    def reversible(self, params: RollbackParams) -> bool:
        return True

    def describe(self, params: RollbackParams) -> str:
        key = prompt_version_key(params.service)
        return f"Roll back the prompt of {params.service} to {params.target()} ({key})"
