"""Tell people something in Slack. Harmless, and cannot be taken back."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from actions.base import Action, ActionParams, Risk
from actions.context import ActionContext, ActionOutcome


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

    async def apply(self, params: NotifyParams, ctx: ActionContext) -> ActionOutcome:
        if ctx.dry_run:
            return ActionOutcome(summary=f"dry run: would {self.describe(params)}")
        response = await ctx.messenger.notify(
            params.to, params.text, idempotency_key=ctx.idempotency_key
        )
        return ActionOutcome(summary=f"notified {', '.join(params.to)}", response=response)
