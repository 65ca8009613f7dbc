"""Actions that set one control value: apply writes it, undo writes back what was there.

The six AI controls (tool switch, autonomy, model, prompt version, retrieval index, human
review) all work this way; each action only says which key and which value. What the apply
will do is planned first (:meth:`ControlAction.plan`, the one place a target is resolved): the
executor plans at request time, shows the plan to approvers, and hands it back to the apply,
which refuses a plan whose resolved target (``to: previous``) went stale meanwhile.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, TypeVar

from actions.backends.base import FlagValue
from actions.base import Action, ActionParams
from actions.context import ActionContext, ActionOutcome, ControlPlan, show_value
from actions.control_values import same_value
from actions.errors import FinalError

P = TypeVar("P", bound=ActionParams)


class StalePlanError(FinalError):
    """The live value moved since the plan was approved: applying would be another change."""


class ControlAction(Action[P]):
    def service_of(self, params: P) -> str:
        service: str = getattr(params, "service")  # noqa: B009 - every control params has it
        return service

    @abstractmethod
    async def target(self, params: P, ctx: ActionContext) -> tuple[str, FlagValue]:
        """The key to change and the value to give it."""

    def reversible(self, params: P) -> bool:
        return True

    async def plan(self, params: P, ctx: ActionContext) -> ControlPlan:
        """The key, its live value and the value to give it."""
        key, value = await self.target(params, ctx)
        current = await ctx.backend_for(self.service_of(params)).read(key)
        return ControlPlan(key=key, before=current, after=value)

    async def _approved_plan(self, params: P, ctx: ActionContext) -> tuple[ControlPlan, Any]:
        """The plan to apply and, on a retry, the value before it (for undo).

        Without an approved plan, a fresh one. With one, its change; a live value already at
        its target is a retry of this apply (the value before is still the plan's). A fixed
        target is written without reading first: the write answers what was there, and
        :meth:`apply` tells a retry from that (one read fewer between the alert and the
        served value). A target resolved from what was live (``to: previous``) is resolved
        again, the same way: if that gives another change now (a version shipped meanwhile),
        it is refused, since the approvers approved the change they saw and no other.
        """
        approved = ctx.plan
        if approved is None:
            return await self.plan(params, ctx), None
        if not approved.resolved and not ctx.dry_run:
            return approved, None
        current = await ctx.backend_for(self.service_of(params)).read(approved.key)
        if _retried(current, approved):
            return approved, approved.before
        if not approved.resolved:
            return ControlPlan(approved.key, current, approved.after), None
        now = await self.plan(params, ctx)
        if same_value(now.before, approved.before) and same_value(now.after, approved.after):
            return approved, None
        raise StalePlanError(
            f"not applied: the change requested and approved was {approved.text()}, but "
            f"{approved.key} changed since and it would now be {show_value(now.before)} → "
            f"{show_value(now.after)}; request the mitigation again to approve that"
        )

    async def apply(self, params: P, ctx: ActionContext) -> ActionOutcome:
        plan, before_retry = await self._approved_plan(params, ctx)
        key, value = plan.key, plan.after
        backend = ctx.backend_for(self.service_of(params))
        if ctx.dry_run:
            return ActionOutcome(
                summary=(
                    f"dry run: would set {key} from {show_value(plan.before)} to "
                    f"{show_value(value)}" + (f" ({plan.resolved})" if plan.resolved else "")
                ),
                key=key,
                before=plan.before,
                after=value,
                response={"dry_run": True, "backend": backend.name, "plan": plan.as_dict()},
            )
        result = await backend.write(key, value, actor=ctx.actor, reason=ctx.reason)
        before = result.before if before_retry is None else before_retry
        if plan is ctx.plan and not plan.resolved and _retried(result.before, plan):
            before = plan.before  # a retry of this apply: undo restores what the plan saw
        how = f"{backend.name}; {plan.resolved}" if plan.resolved else backend.name
        return ActionOutcome(
            summary=f"{key}: {show_value(before)} → {show_value(result.after)} ({how})",
            key=key,
            before=before,
            after=result.after,
            response={"backend": backend.name, **result.response},
            undo_state={"key": key, "before": before, "after": result.after},
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
                summary=(
                    f"dry run: would restore {key} from {show_value(current)} "
                    f"to {show_value(restore)}"
                ),
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
            summary=(
                f"{key}: {show_value(result.before)} → {show_value(result.after)} "
                f"(undo, {backend.name})"
            ),
            key=key,
            before=result.before,
            after=result.after,
            response={"backend": backend.name, **result.response},
        )


def _retried(live: FlagValue | None, plan: ControlPlan) -> bool:
    """The live value is already the plan's target and was not before: this apply ran once."""
    return same_value(live, plan.after) and not same_value(live, plan.before)
