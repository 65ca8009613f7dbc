"""What an action may use while it runs, handed in by the executor.

Actions never reach into Ballast: they get a backend per service, the history of a key, an
HTTP client, and ways to notify and page, all behind the small protocols below.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from actions.backends.base import ControlBackend, FlagValue

if TYPE_CHECKING:  # httpx (and, through it, rich and pygments) only when actions run
    import httpx


class BackendResolver(Protocol):
    def __call__(self, service: str) -> ControlBackend: ...


def show_value(value: FlagValue | None) -> str:
    """A control value as people read it in summaries and approval requests."""
    if value is None:
        return "(unset)"
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


def show_time(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


@dataclass(frozen=True, slots=True)
class PreviousValue:
    """What ``to: previous`` means for a key now, and where that was found.

    ``replaced_by``/``replaced_at``: who made the live value live (replacing ``value``), when;
    ``shipped_by``/``shipped_at``: who made ``value`` itself live, when it is recorded.
    """

    value: FlagValue
    source: str  # "control history" or "change log"
    replaced_by: str
    replaced_at: datetime
    shipped_by: str | None = None
    shipped_at: datetime | None = None

    def explain(self, current: FlagValue | None) -> str:
        """One line for an approver: why this is the previous value, who shipped what, when."""
        live = (
            f"{self.replaced_by} made {show_value(current)} live"
            if current is not None
            else f"{self.replaced_by} recorded the live version"
        )
        text = (
            f"previous from the {self.source}: {live} at {show_time(self.replaced_at)}, "
            f"replacing {show_value(self.value)}"
        )
        if self.shipped_by is not None and self.shipped_at is not None:
            text += (
                f"; {show_value(self.value)} was shipped by {self.shipped_by} "
                f"at {show_time(self.shipped_at)}"
            )
        return text


class ControlHistory(Protocol):
    async def previous(self, key: str, current: FlagValue | None) -> PreviousValue | None:
        """The value the key had before it became ``current`` and where that is recorded;
        None if nothing is known."""


@dataclass(frozen=True, slots=True)
class ControlPlan:
    """The exact change a control action will make: shown before anyone approves, stored with
    the request, and the only change the apply may make once approved.

    ``resolved`` is the explanation of a target that depends on the live value (``to:
    previous``); empty for a named value. Such a plan is stale once the live value moved.
    """

    key: str
    before: FlagValue | None
    after: FlagValue
    resolved: str = ""

    def text(self) -> str:
        line = f"{self.key}: {show_value(self.before)} → {show_value(self.after)}"
        return f"{line} ({self.resolved})" if self.resolved else line

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "before": self.before,
            "after": self.after,
            "resolved": self.resolved,
            "text": self.text(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ControlPlan:
        return cls(
            key=str(data["key"]),
            before=data.get("before"),
            after=data["after"],
            resolved=str(data.get("resolved") or ""),
        )


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
    # The plan approved at request time: the apply makes exactly this change or refuses.
    plan: ControlPlan | None = None


@dataclass(frozen=True, slots=True)
class ActionOutcome:
    """What an apply or undo did: enough to undo it and to audit it."""

    summary: str
    key: str | None = None
    before: FlagValue | None = None
    after: FlagValue | None = None
    response: dict[str, Any] = field(default_factory=dict)
    undo_state: dict[str, Any] = field(default_factory=dict)
