"""The approval decisions the executor asks of bot.execution.policy."""

from __future__ import annotations

import pytest

from actions.base import Risk
from bot.errors import PolicyError
from bot.execution.policy import decide, in_progress, waiting_for
from bot.execution.results import ExecutionState
from bot.incidents.actors import SYSTEM, Actor
from bot.runbooks.schema import MitigationMode

AUTO, APPROVE = MitigationMode.AUTO, MitigationMode.APPROVE
U1, U2 = Actor.slack("U1"), Actor.slack("U2")


def test_ballast_runs_only_what_needs_no_approval() -> None:
    runs = decide([], SYSTEM, AUTO, Risk.LOW)
    assert (runs.execute, runs.approvals, runs.needed) == (True, (), 0)
    waits = decide([], SYSTEM, APPROVE, Risk.LOW)
    assert (waits.execute, waits.approvals, waits.needed) == (False, (), 1)
    assert waiting_for(waits) == "waiting for 1 more approval(s) from an owner"


def test_one_owner_approves_a_medium_risk_action() -> None:
    decision = decide([], U1, APPROVE, Risk.MEDIUM)
    assert (decision.execute, decision.approvals) == (True, ("U1",))


def test_high_risk_needs_two_different_owners() -> None:
    first = decide([], U1, APPROVE, Risk.HIGH)
    assert (first.execute, first.needed) == (False, 2)
    assert waiting_for(first) == "waiting for 1 more approval(s) from an owner other than U1"
    with pytest.raises(PolicyError, match="a second, different owner must approve it"):
        decide(first.approvals, U1, APPROVE, Risk.HIGH)
    second = decide(first.approvals, U2, APPROVE, Risk.HIGH)
    assert (second.execute, second.approvals) == (True, ("U1", "U2"))


@pytest.mark.parametrize("state", list(ExecutionState))
def test_in_progress_states(state: ExecutionState) -> None:
    busy = {ExecutionState.RUNNING, ExecutionState.APPLIED, ExecutionState.UNDOING}
    assert in_progress(state) is (state in busy)
