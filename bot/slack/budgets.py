"""Ballast's own Slack rate budgets: token buckets per (method, scope), and who may spend them.

slack_sdk's ``RateLimitErrorRetryHandler`` is off by default, retries once and shares nothing
between calls, so Ballast paces itself below Slack's documented limits instead of running into
them:

=====================  ===========================================================
``chat.postMessage``   ~1/s per channel (thread replies included), burst 3; and a
                       workspace-wide cap far below Slack's "several hundred a minute"
``chat.update``        at most one per incident message per 15 s (checked against the
                       stored ``slack_messages.updated_at``, so it holds across restarts)
                       and under 40 a minute workspace-wide (Tier 3 is ~50)
Tier 2 methods         ``conversations.create``, ``usergroups.users.list``: under 15/min
Tier 3 / Tier 4        under 40/min / under 90/min, one bucket per method
=====================  ===========================================================

A bucket with ``burst`` b refilling at r per second lets through at most ``b + r*w`` calls in
any window of w seconds; the defaults are chosen so that bound (not only the average) stays
under each limit. A ``429`` pauses the buckets of that call until its ``Retry-After`` has
passed, then lets one call through to test the water.

**Several replicas.** Buckets live in process memory, so exactly one process spends them: the
holder of a PostgreSQL advisory lock (the sender lease, a
:class:`bot.store.leases.AdvisoryLease` with ``SENDER_LOCK``). Slack's limits are per workspace
and per channel, not per replica, and they are tiny (one process sends a second's budget in a
few milliseconds), so one sender loses nothing; the buckets stay exact, a ``Retry-After``
reaches every later call, and nothing depends on knowing the replica count. Dividing the
budget by the replica count would need that count to be right and would slow every channel
even when one replica is idle; a database row per bucket would put a row lock on every call's
path. If the sender dies its connection closes, PostgreSQL drops the lock, and another replica
takes over within one poll interval; rows it had claimed are re-claimed after their lease.
SQLite means one process, which always holds the lease.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

log = logging.getLogger(__name__)

# pg_try_advisory_lock(int, int): this constant, and a hash of the schema, so Ballast
# deployments sharing one PostgreSQL database in different schemas do not share a sender.
SENDER_LOCK = 0x5AC4
WORKSPACE = "*"
BucketKey = tuple[str, str]  # (Web API method, channel id or WORKSPACE)


@dataclass(frozen=True, slots=True)
class Rate:
    """``burst`` calls at once, then ``per_second`` calls a second on average."""

    per_second: float
    burst: int

    def most_in(self, seconds: float) -> float:
        """The most calls this rate lets through in any window of ``seconds``."""
        return self.burst + self.per_second * seconds


@dataclass(frozen=True, slots=True)
class BudgetLimits:
    """Ballast's budgets, below Slack's documented limits (see ``shared/REFERENCE.md``)."""

    post_per_channel: Rate = Rate(1.0, 3)
    post_workspace: Rate = Rate(120 / 60, 10)
    update_per_message: timedelta = timedelta(seconds=15)
    update_workspace: Rate = Rate(36 / 60, 3)  # at most 39 in any minute
    tier2: Rate = Rate(12 / 60, 2)  # at most 14 in any minute
    tier3: Rate = Rate(36 / 60, 3)  # at most 39 in any minute
    tier4: Rate = Rate(80 / 60, 5)  # at most 85 in any minute
    # Methods not listed are treated as Tier 2, the most conservative tier.
    method_tiers: dict[str, int] = field(
        default_factory=lambda: {
            "chat.postEphemeral": 4,
            "chat.delete": 3,
            "conversations.create": 2,
            "conversations.history": 3,
            "conversations.invite": 3,
            "conversations.open": 3,
            "conversations.replies": 3,
            "usergroups.users.list": 2,
            "users.info": 4,
        }
    )

    def scaled(self, factor: float) -> BudgetLimits:
        """Every interval times ``factor`` (0.01 makes a minute 0.6 s): for tests and demos."""

        def rate(value: Rate) -> Rate:
            return Rate(value.per_second / factor, value.burst)

        return replace(
            self,
            post_per_channel=rate(self.post_per_channel),
            post_workspace=rate(self.post_workspace),
            update_per_message=self.update_per_message * factor,
            update_workspace=rate(self.update_workspace),
            tier2=rate(self.tier2),
            tier3=rate(self.tier3),
            tier4=rate(self.tier4),
        )

    def rate_of(self, key: BucketKey) -> Rate:
        method, scope = key
        if method == "chat.postMessage":
            return self.post_workspace if scope == WORKSPACE else self.post_per_channel
        if method == "chat.update":
            return self.update_workspace
        tier = self.method_tiers.get(method, 2)
        return {2: self.tier2, 3: self.tier3}.get(tier, self.tier4)


class _Bucket:
    __slots__ = ("paused_until", "rate", "stamp", "tokens")

    def __init__(self, rate: Rate, now: float) -> None:
        self.rate = rate
        self.tokens = float(rate.burst)
        self.stamp = now
        self.paused_until = now

    def level(self, now: float) -> float:
        elapsed = max(0.0, now - self.stamp)
        return min(float(self.rate.burst), self.tokens + elapsed * self.rate.per_second)

    def wait(self, now: float, calls: int = 1) -> float:
        """Seconds until ``calls`` tokens are there (0 when they are now)."""
        short = calls - self.level(now)
        return max(0.0, self.paused_until - now, short / self.rate.per_second)

    def take(self, now: float, tokens: float = 1.0) -> None:
        self.tokens = self.level(now) - tokens
        self.stamp = max(now, self.stamp)

    def pause(self, now: float, seconds: float) -> None:
        """Nothing until ``now + seconds``; then exactly one token."""
        until = now + seconds
        self.paused_until = max(self.paused_until, until)
        self.tokens = 0.0
        self.stamp = max(now, self.paused_until - 1.0 / self.rate.per_second)


class SlackBudgets:
    """The token buckets of one process. Cheap and synchronous: no I/O, no sleeping."""

    def __init__(self, clock: Callable[[], datetime], limits: BudgetLimits | None = None) -> None:
        self._clock = clock
        self.limits = limits or BudgetLimits()
        self._buckets: dict[BucketKey, _Bucket] = {}

    def keys_for(self, method: str, channel: str | None) -> tuple[BucketKey, ...]:
        """The buckets one call spends from: per channel and workspace-wide for posts."""
        if method == "chat.postMessage" and channel:
            return ((method, channel), (method, WORKSPACE))
        return ((method, WORKSPACE),)

    def wait(self, keys: Iterable[BucketKey]) -> float:
        """Seconds until a call on ``keys`` may go (0: now). Spends nothing."""
        now = self._now()
        return max((self._bucket(key, now).wait(now) for key in keys), default=0.0)

    def try_spend(self, keys: Iterable[BucketKey]) -> float:
        """Spend one token from every bucket in ``keys`` if all have one: returns 0.0.
        Otherwise spends nothing and returns the seconds to wait."""
        now = self._now()
        buckets = [self._bucket(key, now) for key in keys]
        wait = max((bucket.wait(now) for bucket in buckets), default=0.0)
        if wait > 0:
            return wait
        for bucket in buckets:
            bucket.take(now)
        return 0.0

    def refund(self, keys: Iterable[BucketKey]) -> None:
        """Give back a token spent for a call that was not made (its claim rolled back)."""
        now = self._now()
        for key in keys:
            self._bucket(key, now).take(now, -1.0)

    def pause(self, keys: Iterable[BucketKey], seconds: float) -> None:
        """Honour a ``Retry-After``: nothing on ``keys`` for ``seconds``."""
        now = self._now()
        for key in keys:
            self._bucket(key, now).pause(now, seconds)

    def update_due(self, last_update: datetime | None) -> datetime | None:
        """When the next ``chat.update`` of a message last updated at ``last_update`` may go."""
        if last_update is None:
            return None
        return last_update + self.limits.update_per_message

    def _bucket(self, key: BucketKey, now: float) -> _Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(self.limits.rate_of(key), now)
        return bucket

    def _now(self) -> float:
        return self._clock().timestamp()
