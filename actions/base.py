"""The action interface: a named, typed, risk-rated mitigation.

An action is referenced by name from a runbook; its ``Params`` model is checked when the
runbook loads, so a typo fails in CI and never at 3 a.m. Risk may depend on the params (and,
at run time, on the control's current value): lowering an agent's autonomy is low risk,
raising it is not. Executing actions against control planes builds on this interface.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from enum import StrEnum
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from actions.context import ActionContext, ActionOutcome, ControlPlan
from actions.errors import FinalError


class Risk(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"

    @property
    def rank(self) -> int:
        return _RISK_RANK[self]


_RISK_RANK = {Risk.LOW: 0, Risk.MEDIUM: 1, Risk.HIGH: 2}


class ActionParams(BaseModel):
    """Base of every params model: strict, so a misspelt param is an error, not a no-op."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# Service and tool names become parts of flag keys, which are restricted to [a-z0-9._-];
# a dot inside a name would make the key ambiguous, so names themselves may not hold one.
NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"


def service_field() -> Any:
    return Field(pattern=NAME_PATTERN, description="Service name, as in the flag keys.")


P = TypeVar("P", bound=ActionParams)


class Action(ABC, Generic[P]):
    """A mitigation Ballast knows how to preview, rate, apply and undo."""

    name: ClassVar[str]
    params_model: ClassVar[type[ActionParams]]
    summary: ClassVar[str]

    def parse(self, params: dict[str, Any]) -> P:
        """Validate raw params; raises pydantic's ``ValidationError`` naming the bad field."""
        return self.params_model.model_validate(params)  # type: ignore[return-value]

    @abstractmethod
    def risk(self, params: P, current: str | None = None) -> Risk:
        """Risk of this change; ``current`` is the control's value now, when it is known."""

    @abstractmethod
    def reversible(self, params: P) -> bool:
        """Whether :meth:`undo` can restore what :meth:`apply` changed."""

    @abstractmethod
    def describe(self, params: P) -> str:
        """One line a human can approve: what will change, where."""

    def finalize_for(self, path: tuple[str, ...]) -> Callable[[Any], Any] | None:
        """How label values rendered into the param at ``path`` are made safe for it.

        Called when a runbook's params are rendered over an alert; the callable gets the value
        of each ``{{ … }}`` (never the runbook's literal text). None: inserted as rendered.
        """
        return None

    def control_key(self, params: P) -> str | None:
        """The flag key this action changes, if it changes one (for risk and audit)."""
        return None

    async def plan(self, params: P, ctx: ActionContext) -> ControlPlan | None:
        """The exact change :meth:`apply` would make now (None: not a control change).

        Resolved when the mitigation is requested, shown to approvers and stored with the
        request; the apply is then given it (``ctx.plan``) and makes that change or refuses.
        """
        return None

    @abstractmethod
    async def apply(self, params: P, ctx: ActionContext) -> ActionOutcome:
        """Make the change (or, with ``ctx.dry_run``, only say what it would be)."""

    async def undo(self, params: P, ctx: ActionContext, applied: ActionOutcome) -> ActionOutcome:
        """Restore what ``apply`` changed. Irreversible actions refuse."""
        raise FinalError(f"{self.name} cannot be undone")
