"""An authenticated caller: its name, how it got in, its roles, the person it is."""

from __future__ import annotations

from dataclasses import dataclass

from bot.auth.methods import AuthMethod
from bot.auth.roles import Role, expand


@dataclass(frozen=True, slots=True)
class Principal:
    """Who authenticated, how, with which roles; ``person`` is their Slack user id if any."""

    name: str
    method: AuthMethod
    roles: frozenset[Role]
    person: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "roles", expand(self.roles))

    def has(self, role: Role) -> bool:
        return role in self.roles
