"""Who may run what: the owner rule and the two-person rule, the same for every interface.

A Slack click, a slash command, an API call and the CLI all name an actor (a Slack user id or
handle); the runbook's owners (user ids, or user-group handles like ``@ai-platform-oncall``)
say who may approve. ``approve`` mitigations need one owner; high-risk ones need two
different owners, and the requester's click counts as the first.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from actions.base import Risk
from bot.errors import PolicyError
from bot.execution.results import ExecutionState
from bot.incidents.actors import Actor
from bot.runbooks.schema import MitigationMode


class OwnerDirectory(Protocol):
    async def members(self, group: str) -> frozenset[str]:
        """User ids (and handles) in a user group such as ``@ai-platform-oncall``."""


class StaticDirectory:
    """Teams listed in ballast.yaml (``teams:``); Slack user groups are resolved elsewhere."""

    def __init__(self, teams: Mapping[str, Iterable[str]]) -> None:
        self._teams = {name: frozenset(members) for name, members in teams.items()}

    async def members(self, group: str) -> frozenset[str]:
        return self._teams.get(group, frozenset())


@dataclass(frozen=True, slots=True)
class Decision:
    """What a request by an authorized owner leads to."""

    execute: bool  # enough approvals: apply now
    approvals: tuple[str, ...]  # the distinct approvers so far, in order
    needed: int  # approvals required for this risk


def approvals_needed(mode: MitigationMode, risk: Risk) -> int:
    if mode is MitigationMode.AUTO and risk is Risk.LOW:
        return 0
    return 2 if risk is Risk.HIGH else 1


async def is_owner(actor: str, owners: Iterable[str], directory: OwnerDirectory) -> bool:
    for owner in owners:
        if actor == owner:
            return True
        if owner.startswith("@") and actor in await directory.members(owner):
            return True
    return False


async def check_owner(actor: str, owners: list[str], directory: OwnerDirectory) -> None:
    if not await is_owner(actor, owners, directory):
        raise PolicyError(
            f"{actor} is not an owner of this runbook (owners: {', '.join(owners)}); "
            "ask one of them, or add yourself to the runbook's owners in git"
        )


def decide(previous: Iterable[str], actor: Actor, mode: MitigationMode, risk: Risk) -> Decision:
    """What a request by ``actor`` leads to: an owner's request or approval counts (see
    :func:`record_approval`); Ballast itself (auto mitigations) approves nothing, so it runs
    only what needs no approval."""
    if actor.is_system:
        needed = approvals_needed(mode, risk)
        return Decision(execute=needed == 0, approvals=tuple(previous), needed=needed)
    return record_approval(previous, actor.owner_identity(), mode, risk)


def waiting_for(decision: Decision) -> str:
    """What a request that may not run yet is waiting for."""
    waiting = (
        f"waiting for {decision.needed - len(decision.approvals)} more approval(s) from an owner"
    )
    if decision.approvals:
        waiting += " other than " + ", ".join(decision.approvals)
    return waiting


def in_progress(state: ExecutionState) -> bool:
    """An execution in this state is being applied, applied or being undone: a new request
    for the mitigation changes nothing (it must be undone, or fail, first)."""
    return state in (ExecutionState.RUNNING, ExecutionState.APPLIED, ExecutionState.UNDOING)


def record_approval(
    previous: Iterable[str], actor: str, mode: MitigationMode, risk: Risk
) -> Decision:
    """Add ``actor``'s approval; raise if they already gave it (requester ≠ approver)."""
    approvals = tuple(previous)
    needed = approvals_needed(mode, risk)
    if actor in approvals:
        raise PolicyError(
            f"{actor} already approved this {risk.value}-risk action; a second, different "
            "owner must approve it (requester and approver must be two people)"
        )
    approvals = (*approvals, actor)
    return Decision(execute=len(approvals) >= needed, approvals=approvals, needed=needed)
