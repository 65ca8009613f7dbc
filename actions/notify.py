"""Tell people something in Slack. Harmless, and cannot be taken back."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from actions.base import Action, ActionParams, Risk


class NotifyParams(ActionParams):
    to: list[str] = Field(
        min_length=1, description="Slack user group handles (@team), user IDs or #channels."
    )
    text: str = Field(min_length=1, max_length=3000)


class Notify(Action[NotifyParams]):
    name = "notify"
    params_model: ClassVar[type[ActionParams]] = NotifyParams
    summary = "Post a message to Slack users, user groups or channels."

    def risk(self, params: NotifyParams, current: str | None = None) -> Risk:
        return Risk.LOW

    def reversible(self, params: NotifyParams) -> bool:
        return False

    def describe(self, params: NotifyParams) -> str:
        return f"Notify {', '.join(params.to)}: {params.text[:80]}"
