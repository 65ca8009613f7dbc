"""Slack Web API rate limits, enforced per method and per workspace or channel.

Sources (docs.slack.dev/apis/web-api/rate-limits, and each method's page for its tier):

- limits apply "per API method per workspace per app"; Tier 2 is 20+ per minute, Tier 3 50+,
  Tier 4 100+; "a small amount of burst behavior is tolerated";
- chat.postMessage is special: "one message per second per channel", short bursts allowed;
  thread replies are messages in the same channel, so they share the channel's budget;
- a rejected call gets HTTP 429 with ``Retry-After`` (whole seconds) and
  ``{"ok": false, "error": "ratelimited"}``.

Slack publishes floors ("20+"), not the exact algorithm, so the emulator uses the floor as a hard
ceiling over a sliding window (at most 20 in any 60 s): a client that stays inside it is safe on
real Slack. chat.postMessage is a token bucket instead (1 per second, bursts of 3), which is what
"one per second, short bursts allowed" describes. Rejected calls do not use up the budget.
``time_scale`` shrinks every window (``time_scale=60`` turns "20 per minute" into "20 per
second") so tests that need a limit to reset run fast.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

__all__ = [
    "DEFAULT_LIMITS",
    "TIER_2",
    "TIER_3",
    "TIER_4",
    "Limit",
    "RateLimiter",
    "Scope",
    "retry_after_header",
]


class Scope(StrEnum):
    """What one budget is shared by."""

    WORKSPACE = "workspace"
    CHANNEL = "channel"


@dataclass(frozen=True)
class Limit:
    """``count`` calls per ``window`` seconds, per ``scope``.

    Without ``burst``: at most ``count`` accepted calls in any ``window`` (sliding window). With
    ``burst``: a token bucket holding ``burst`` calls, refilled at ``count / window`` per second.
    """

    count: int
    window: float
    scope: Scope = Scope.WORKSPACE
    burst: int | None = None
    source: str = ""

    def __post_init__(self) -> None:
        if self.count < 1 or self.window <= 0 or (self.burst is not None and self.burst < 1):
            raise ValueError(f"a Limit needs count >= 1, window > 0, burst >= 1: got {self!r}")


_RATE_LIMITS_DOC = "docs.slack.dev/apis/web-api/rate-limits"
TIER_2 = Limit(20, 60.0, source=f"Tier 2, 20+ per minute ({_RATE_LIMITS_DOC})")
TIER_3 = Limit(50, 60.0, source=f"Tier 3, 50+ per minute ({_RATE_LIMITS_DOC})")
TIER_4 = Limit(100, 60.0, source=f"Tier 4, 100+ per minute ({_RATE_LIMITS_DOC})")
POST_MESSAGE = Limit(
    1,
    1.0,
    Scope.CHANNEL,
    burst=3,
    source="1 per second per channel, short bursts allowed (docs.slack.dev/reference/methods/"
    "chat.postMessage#rate_limiting); a burst of 3 is the emulator's choice",
)

DEFAULT_LIMITS: Mapping[str, Limit | None] = MappingProxyType(
    {
        "auth.test": TIER_4,  # "Special", at least Tier 4 in practice
        "chat.postMessage": POST_MESSAGE,
        "chat.postEphemeral": TIER_4,
        "chat.update": TIER_3,
        "conversations.create": TIER_2,
        "conversations.invite": TIER_3,
        # Tier 3 for a workspace's own (internal) app, which is how Ballast is installed. Apps
        # distributed outside the Marketplace get Tier 1 and 15 messages a page since 2025
        # (api.slack.com/changelog/2025-05-terms-rate-limit-update-and-faq).
        "conversations.history": TIER_3,
        "conversations.replies": TIER_3,
        "usergroups.users.list": TIER_2,
        "users.info": TIER_4,
        "files.getUploadURLExternal": TIER_4,
        "files.completeUploadExternal": TIER_4,
    }
)


def retry_after_header(seconds: float) -> str:
    """Slack sends whole seconds, and slack_sdk parses the header with ``int()``.

    Rounded up, so a client that waits exactly this long is never rejected again for the same
    window; at least 1 because Slack never says 0.
    """
    return str(max(1, math.ceil(seconds)))


class RateLimiter:
    """Sliding-window limiter; thread-safe, shared by all requests of one emulator."""

    def __init__(
        self,
        limits: Mapping[str, Limit | None] = DEFAULT_LIMITS,
        *,
        time_scale: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if time_scale <= 0:
            raise ValueError(f"time_scale must be > 0, got {time_scale}")
        self.limits = dict(limits)
        self.time_scale = time_scale
        self._clock = clock
        self._lock = threading.Lock()
        self._accepted: dict[tuple[str, str], deque[float]] = {}
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}

    def acquire(self, method: str, channel: str | None) -> float | None:
        """Count one call; ``None`` if accepted, else the real seconds until it would be."""
        limit = self.limits.get(method)
        if limit is None:
            return None
        key = (method, (channel or "") if limit.scope is Scope.CHANNEL else "")
        window = limit.window / self.time_scale
        with self._lock:
            now = self._clock()
            if limit.burst is not None:
                return self._bucket(key, limit.burst, limit.count / window, now)
            accepted = self._accepted.setdefault(key, deque())
            while accepted and accepted[0] <= now - window:
                accepted.popleft()
            if len(accepted) >= limit.count:
                return accepted[0] + window - now
            accepted.append(now)
            return None

    def _bucket(self, key: tuple[str, str], capacity: int, rate: float, now: float) -> float | None:
        tokens, since = self._buckets.get(key, (float(capacity), now))
        tokens = min(float(capacity), tokens + (now - since) * rate)
        if tokens < 1:
            self._buckets[key] = (tokens, now)
            return (1 - tokens) / rate
        self._buckets[key] = (tokens - 1, now)
        return None

    def reset(self) -> None:
        with self._lock:
            self._accepted.clear()
            self._buckets.clear()
