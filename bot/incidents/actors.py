"""Who did something: an authenticated principal and, for people, the person it stands for.

The owner rule and the two-person rule compare *persons* (Slack user ids), whatever way in was
used: two API tokens of one person are one person, a Slack click and a token of the same
person are one person, and a service (``BALLAST_API_TOKEN``, a pipeline) is no person and so
never an owner. ``ballast`` (the system actor) and user-group handles are never a person and
can never be claimed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from bot.auth.methods import AuthMethod
from bot.errors import PolicyError
from bot.incidents.timeline import SYSTEM_ACTOR

__all__ = ["SYSTEM", "Actor", "AuthMethod", "as_actor", "check_claimable"]


@dataclass(frozen=True, slots=True)
class Actor:
    """The principal that acted, the person it is (None for services), how it got in.

    ``claimed`` is set when a principal with the ``impersonate`` role acted for someone else
    (a chat bridge): ``person`` is then the claimed person and both are journaled.
    """

    principal: str
    method: AuthMethod
    person: str | None = None
    claimed: str | None = None

    @property
    def name(self) -> str:
        """What the timeline's ``actor`` column shows: the person, else the principal."""
        return self.person or self.principal

    @property
    def is_system(self) -> bool:
        return self.method is AuthMethod.SYSTEM

    def audit(self) -> dict[str, Any]:
        """The facts every write records about who made it."""
        record: dict[str, Any] = {"principal": self.principal, "method": self.method.value}
        if self.person is not None:
            record["person"] = self.person
        if self.claimed is not None:
            record["claimed_actor"] = self.claimed
        return record

    def owner_identity(self) -> str:
        """The person the owner and two-person rules compare; a service has none."""
        if self.person is None:
            raise PolicyError(
                f"{self.principal} is a service principal ({self.method.value}), not a person: "
                "it is no runbook owner. Use a named token with a slack_user, OIDC or Slack"
            )
        return self.person

    @classmethod
    def slack(cls, user_id: str) -> Actor:
        """A Slack user, as Slack's signed request names them."""
        check_claimable(user_id)
        return cls(principal=f"slack:{user_id}", method=AuthMethod.SLACK, person=user_id)

    @classmethod
    def local(cls, person: str) -> Actor:
        """A person named by an in-process caller that is trusted to name them."""
        check_claimable(person)
        return cls(principal=f"local:{person}", method=AuthMethod.LOCAL, person=person)

    def impersonating(self, claimed: str) -> Actor:
        """This principal acting for ``claimed`` (only with the ``impersonate`` role)."""
        check_claimable(claimed)
        return Actor(self.principal, self.method, person=claimed, claimed=claimed)


SYSTEM = Actor(principal=SYSTEM_ACTOR, method=AuthMethod.SYSTEM)
"""Ballast itself: never a person, never an approver."""


def check_claimable(name: str) -> None:
    """Refuse names no principal may act as: the system actor and group handles."""
    stripped = name.strip()
    if not stripped:
        raise PolicyError("an empty actor names nobody")
    if stripped.lower() == SYSTEM_ACTOR:
        raise PolicyError(f"{SYSTEM_ACTOR!r} is Ballast itself; no one can act as it")
    if stripped.startswith(("@", "<!subteam", "!subteam")) or _GROUP_ID.fullmatch(stripped):
        raise PolicyError(f"{stripped} is a user group, not a person; a group cannot act")


_GROUP_ID = re.compile(r"S[0-9A-Z]{8,}")  # a Slack user-group id (users are U.../W...)


def as_actor(actor: Actor | str) -> Actor:
    """In-process callers may still name a person as a string (the CLI, tests, Slack ids);
    ``"ballast"`` is the system actor."""
    if isinstance(actor, Actor):
        return actor
    if actor == SYSTEM_ACTOR:
        return SYSTEM
    return Actor.local(actor)
