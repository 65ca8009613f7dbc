"""Actors: the owner and two-person rules compare persons, never principals or names."""

from __future__ import annotations

import pytest

from actions.base import Risk
from bot.errors import PolicyError
from bot.execution.policy import decide
from bot.incidents.actors import SYSTEM, Actor, AuthMethod, as_actor, check_claimable
from bot.runbooks.schema import MitigationMode


def test_two_principals_of_one_person_are_one_approver() -> None:
    laptop = Actor("alice-laptop", AuthMethod.TOKEN, person="U0ALICE")
    ci = Actor("alice-ci", AuthMethod.TOKEN, person="U0ALICE")
    first = decide([], laptop, MitigationMode.APPROVE, Risk.HIGH)
    assert first.approvals == ("U0ALICE",)
    assert not first.execute
    with pytest.raises(PolicyError, match="two people"):
        decide(first.approvals, ci, MitigationMode.APPROVE, Risk.HIGH)
    with pytest.raises(PolicyError, match="two people"):
        decide(first.approvals, Actor.slack("U0ALICE"), MitigationMode.APPROVE, Risk.HIGH)


def test_a_service_is_never_an_approver() -> None:
    api = Actor("api", AuthMethod.API_TOKEN)
    with pytest.raises(PolicyError, match="service principal"):
        decide([], api, MitigationMode.APPROVE, Risk.LOW)


@pytest.mark.parametrize(
    "name", ["ballast", "BALLAST", "@audit-oncall", "<!subteam^S0AB12CD34>", "S0AB12CD34", " "]
)
def test_system_actor_and_groups_cannot_be_claimed(name: str) -> None:
    with pytest.raises(PolicyError):
        check_claimable(name)
    with pytest.raises(PolicyError):
        Actor("bridge", AuthMethod.TOKEN).impersonating(name)


def test_impersonation_keeps_both_names() -> None:
    acted = Actor("slack-bridge", AuthMethod.TOKEN).impersonating("U0BOB")
    assert acted.person == "U0BOB"
    assert acted.name == "U0BOB"
    assert acted.audit() == {
        "principal": "slack-bridge",
        "method": "token",
        "person": "U0BOB",
        "claimed_actor": "U0BOB",
    }


def test_in_process_names() -> None:
    assert as_actor("ballast") is SYSTEM
    assert as_actor("U0AAA").person == "U0AAA"
    assert as_actor(SYSTEM) is SYSTEM
