"""What an action may use while it runs, handed in by the executor.

Actions never reach into Ballast: they get a backend per service, the history of a key, an
HTTP client, and ways to notify and page, all behind the small protocols below.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from actions.backends.base import ControlBackend, FlagValue

if TYPE_CHECKING:  # httpx (and, through it, rich and pygments) only when actions run
    import httpx


class BackendResolver(Protocol):
    def __call__(self, service: str) -> ControlBackend: ...


class ControlHistory(Protocol):
    async def previous_value(self, key: str, current: FlagValue | None) -> FlagValue | None:
        """The value the key had before it became ``current``; None if never changed."""


class Messenger(Protocol):
    async def notify(self, to: list[str], text: str, *, idempotency_key: str) -> dict[str, Any]:
        """Deliver a message to Slack users, user groups or channels."""


class Pager(Protocol):
    async def page(
        self, target: str, summary: str, severity: str, *, dedup_key: str
    ) -> dict[str, Any]:
        """Page the on-call of ``target`` (a name from ballast.yaml)."""


class HttpPolicy(Protocol):
    def check_url(self, url: str) -> None:
        """Raise ``FinalError`` unless the URL's host is on the allowlist."""

    def expand_secrets(self, value: str) -> str:
        """Replace ``${ENV_NAME}`` with the environment's value (never logged)."""


@dataclass(frozen=True, slots=True)
class ActionContext:
    backend_for: BackendResolver
    history: ControlHistory
    http: httpx.AsyncClient
    messenger: Messenger
    pager: Pager
    http_policy: HttpPolicy
    actor: str
    idempotency_key: str
    reason: str = ""
    dry_run: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ActionOutcome:
    """What an apply or undo did: enough to undo it and to audit it."""

    summary: str
    key: str | None = None
    before: FlagValue | None = None
    after: FlagValue | None = None
    response: dict[str, Any] = field(default_factory=dict)
    undo_state: dict[str, Any] = field(default_factory=dict)
