"""Actions that set one control value: apply writes it, undo writes back what was there.

The six AI controls (tool switch, autonomy, model, prompt version, retrieval index, human
review) all work this way; each action only says which key and which value.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, TypeVar

from actions.backends.base import FlagValue
from actions.base import Action, ActionParams
from actions.context import ActionContext, ActionOutcome

P = TypeVar("P", bound=ActionParams)


class ControlAction(Action[P]):
    def service_of(self, params: P) -> str:
        service: str = getattr(params, "service")  # noqa: B009 - every control params has it
        return service

    @abstractmethod
    async def target(self, params: P, ctx: ActionContext) -> tuple[str, FlagValue]:
        """The key to change and the value to give it."""

    def reversible(self, params: P) -> bool:
        return True

    async def apply(self, params: P, ctx: ActionContext) -> ActionOutcome:
        key, value = await self.target(params, ctx)
        backend = ctx.backend_for(self.service_of(params))
        if ctx.dry_run:
            current = await backend.read(key)
            return ActionOutcome(
                summary=f"dry run: would set {key} from {_show(current)} to {_show(value)}",
                key=key,
                before=current,
                after=value,
                response={"dry_run": True, "backend": backend.name},
            )
        result = await backend.write(key, value, actor=ctx.actor, reason=ctx.reason)
        return ActionOutcome(
            summary=f"{key}: {_show(result.before)} → {_show(result.after)} ({backend.name})",
            key=key,
            before=result.before,
            after=result.after,
            response={"backend": backend.name, **result.response},
            undo_state={"key": key, "before": result.before, "after": result.after},
        )

    async def undo(self, params: P, ctx: ActionContext, applied: ActionOutcome) -> ActionOutcome:
        state: dict[str, Any] = applied.undo_state
        key = str(state.get("key") or applied.key)
        # None: the key did not exist; removing it again lets the app use its own default.
        restore: FlagValue | None = state.get("before", applied.before)
        backend = ctx.backend_for(self.service_of(params))
        if ctx.dry_run:
            current = await backend.read(key)
            return ActionOutcome(
                summary=f"dry run: would restore {key} from {_show(current)} to {_show(restore)}",
                key=key,
                before=current,
                after=restore,
                response={"dry_run": True, "backend": backend.name},
            )
        reason = f"undo: {ctx.reason}" if ctx.reason else "undo"
        if restore is None:
            result = await backend.clear(key, actor=ctx.actor, reason=reason)
        else:
            result = await backend.write(key, restore, actor=ctx.actor, reason=reason)
        return ActionOutcome(
            summary=f"{key}: {_show(result.before)} → {_show(result.after)} (undo, {backend.name})",
            key=key,
            before=result.before,
            after=result.after,
            response={"backend": backend.name, **result.response},
        )


def _show(value: FlagValue | None) -> str:
    if value is None:
        return "(unset)"
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)
