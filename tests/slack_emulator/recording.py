"""Every Web API call the emulator answered, and the questions tests ask about them."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["Call", "CallLog", "Match"]

Match = Literal["request", "target"]


@dataclass(frozen=True)
class Call:
    """One answered call. ``args`` has JSON-in-a-string fields (``blocks`` …) decoded."""

    seq: int
    method: str
    args: Mapping[str, Any]
    channel: str | None
    at: float
    monotonic: float
    status: int
    response: Mapping[str, Any]
    retry_after: float | None = None
    injected: bool = False

    @property
    def ok(self) -> bool:
        return bool(self.response.get("ok"))

    @property
    def error(self) -> str | None:
        error = self.response.get("error")
        return None if error is None else str(error)

    @property
    def rate_limited(self) -> bool:
        return self.status == 429

    def same_request(self, other: Call) -> bool:
        """The same method with the same arguments: a retry of this very request."""
        return self.method == other.method and self.args == other.args

    def same_target(self, other: Call) -> bool:
        """The same method on the same message or thread, whatever the content.

        For clients that coalesce: a 429'd ``chat.update`` is made good by a later successful
        ``chat.update`` of the same ``ts``, even if it carries newer blocks.
        """
        keys = ("ts", "thread_ts", "usergroup", "user", "name")
        return (
            self.method == other.method
            and self.channel == other.channel
            and all(self.args.get(k) == other.args.get(k) for k in keys)
        )


class CallLog:
    """Append-only and thread-safe: the server appends, tests read."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: list[Call] = []

    def append(self, **fields: Any) -> Call:
        with self._lock:
            call = Call(seq=len(self._calls) + 1, **fields)
            self._calls.append(call)
            return call

    def reset(self) -> None:
        with self._lock:
            self._calls.clear()

    def calls(
        self,
        method: str | None = None,
        channel: str | None = None,
        *,
        ok: bool | None = None,
    ) -> list[Call]:
        """Calls in arrival order, filtered by method, channel (ID or as sent) and outcome."""
        with self._lock:
            calls = list(self._calls)
        return [
            c
            for c in calls
            if (method is None or c.method == method)
            and (channel is None or channel in (c.channel, c.args.get("channel")))
            and (ok is None or c.ok == ok)
        ]

    def rate_limited(self, method: str | None = None, channel: str | None = None) -> list[Call]:
        return [c for c in self.calls(method, channel) if c.rate_limited]

    def unretried_rate_limits(self, match: Match = "request") -> list[Call]:
        """429'd calls never followed by a successful matching call: work Slack never got."""
        calls = self.calls()
        same: Callable[[Call, Call], bool] = (
            Call.same_request if match == "request" else Call.same_target
        )
        return [
            rejected
            for rejected in calls
            if rejected.rate_limited
            and not any(
                later.seq > rejected.seq and later.ok and same(rejected, later) for later in calls
            )
        ]

    def premature_retries(self, match: Match = "request") -> list[tuple[Call, Call]]:
        """(429'd call, matching call sent before its ``Retry-After`` had passed)."""
        calls = self.calls()
        same: Callable[[Call, Call], bool] = (
            Call.same_request if match == "request" else Call.same_target
        )
        return [
            (rejected, later)
            for rejected in calls
            if rejected.rate_limited and rejected.retry_after is not None
            for later in calls
            if later.seq > rejected.seq
            and same(rejected, later)
            and later.monotonic < rejected.monotonic + rejected.retry_after
        ]
