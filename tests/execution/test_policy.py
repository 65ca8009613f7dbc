"""The owner rule and the two-person rule, tested directly (bot/execution/policy.py)."""

from __future__ import annotations

import pytest

from actions.base import Risk
from bot.errors import PolicyError
from bot.execution.policy import (
    Decision,
    StaticDirectory,
    approvals_needed,
    check_owner,
    is_owner,
    record_approval,
)
from bot.runbooks.schema import MitigationMode

ONCALL = "@ai-platform-oncall"
DIRECTORY = StaticDirectory({ONCALL: ["U0ALICE001", "U0BOB00002"], "@empty": []})


@pytest.mark.parametrize(
    ("mode", "risk", "needed"),
    [
        (MitigationMode.AUTO, Risk.LOW, 0),
        (MitigationMode.AUTO, Risk.MEDIUM, 1),  # auto is only automatic for low risk
        (MitigationMode.AUTO, Risk.HIGH, 2),
        (MitigationMode.APPROVE, Risk.LOW, 1),
        (MitigationMode.APPROVE, Risk.MEDIUM, 1),
        (MitigationMode.APPROVE, Risk.HIGH, 2),
        (MitigationMode.MANUAL, Risk.LOW, 1),
        (MitigationMode.MANUAL, Risk.HIGH, 2),
    ],
)
def test_approvals_needed(mode: MitigationMode, risk: Risk, needed: int) -> None:
    assert approvals_needed(mode, risk) == needed


async def test_an_owner_is_named_or_in_a_listed_group() -> None:
    owners = ["U0CAROL003", ONCALL]
    assert await is_owner("U0CAROL003", owners, DIRECTORY)
    assert await is_owner("U0BOB00002", owners, DIRECTORY)
    assert not await is_owner("U0MALLORY9", owners, DIRECTORY)
    # A plain id is never looked up as a group, and a group is only one when it starts with @.
    assert not await is_owner("U0ALICE001", ["ai-platform-oncall"], DIRECTORY)
    assert not await is_owner("U0ALICE001", ["@empty", "@unknown"], DIRECTORY)
    assert not await is_owner("U0ALICE001", [], DIRECTORY)


async def test_check_owner_names_the_owners_and_the_fix() -> None:
    await check_owner("U0ALICE001", [ONCALL], DIRECTORY)
    with pytest.raises(PolicyError) as refused:
        await check_owner("U0MALLORY9", ["U0CAROL003", ONCALL], DIRECTORY)
    assert str(refused.value) == (
        "U0MALLORY9 is not an owner of this runbook (owners: U0CAROL003, @ai-platform-oncall); "
        "ask one of them, or add yourself to the runbook's owners in git"
    )


def test_one_approval_runs_a_medium_risk_action() -> None:
    decision = record_approval([], "U0ALICE001", MitigationMode.APPROVE, Risk.MEDIUM)
    assert decision == Decision(execute=True, approvals=("U0ALICE001",), needed=1)


def test_high_risk_needs_two_different_people() -> None:
    first = record_approval([], "U0ALICE001", MitigationMode.APPROVE, Risk.HIGH)
    assert first == Decision(execute=False, approvals=("U0ALICE001",), needed=2)
    with pytest.raises(PolicyError) as twice:
        record_approval(first.approvals, "U0ALICE001", MitigationMode.APPROVE, Risk.HIGH)
    assert str(twice.value) == (
        "U0ALICE001 already approved this high-risk action; a second, different owner must "
        "approve it (requester and approver must be two people)"
    )
    second = record_approval(first.approvals, "U0BOB00002", MitigationMode.APPROVE, Risk.HIGH)
    assert second == Decision(execute=True, approvals=("U0ALICE001", "U0BOB00002"), needed=2)


def test_an_auto_low_risk_action_runs_on_the_first_request() -> None:
    decision = record_approval([], "ballast", MitigationMode.AUTO, Risk.LOW)
    assert decision.execute
    assert decision.needed == 0


async def test_static_directory_members() -> None:
    assert await DIRECTORY.members(ONCALL) == frozenset({"U0ALICE001", "U0BOB00002"})
    assert await DIRECTORY.members("@nobody") == frozenset()
