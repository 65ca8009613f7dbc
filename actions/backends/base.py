"""A control-plane backend: where a service's control values live.

Each backend reads a value, writes one (reading it back to prove the change took), and so can
restore the previous value on undo. Values are booleans (tool switches) or strings (autonomy,
model, prompt version, retrieval index, human review level).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

from actions.errors import FinalError

FlagValue = bool | str


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What a write changed. ``response`` is what the backend said (ids, versions), no secrets."""

    key: str
    before: FlagValue | None
    after: FlagValue | None  # None: the key was removed
    response: dict[str, Any] = field(default_factory=dict)


class ControlBackend(ABC):
    name: ClassVar[str]

    @abstractmethod
    async def read(self, key: str) -> FlagValue | None:
        """The value the AI application reads now; None when the key does not exist."""

    @abstractmethod
    async def write(self, key: str, value: FlagValue, *, actor: str, reason: str) -> WriteResult:
        """Set the value, read it back, and return before/after.

        Raises ``RetryableError`` for transient failures and ``FinalError`` otherwise; a
        failed write leaves the previous value in place.
        """

    async def clear(self, key: str, *, actor: str, reason: str) -> WriteResult:
        """Remove the key, so the application falls back to its own default.

        This is the undo of a change to a key that did not exist before. Backends that cannot
        remove a key refuse, and the responder sets the value by hand.
        """
        raise FinalError(
            f"the {self.name} backend cannot remove {key}; set the value you want explicitly"
        )
