"""Retries for actions: only ``RetryableError``, with backoff, within a deadline.

A server's ``Retry-After`` is honoured (capped by the deadline); otherwise exponential backoff
with jitter. ``FinalError`` (a 4xx, a bad value) is never retried.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential_jitter,
)

from actions.context import ActionOutcome
from actions.errors import RetryableError


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    deadline: timedelta = timedelta(seconds=30)
    max_attempts: int = 5
    initial_backoff: float = 0.2
    max_backoff: float = 5.0


async def with_retries(
    policy: RetryPolicy, attempt: Callable[[], Awaitable[ActionOutcome]]
) -> ActionOutcome:
    backoff = wait_exponential_jitter(multiplier=policy.initial_backoff, max=policy.max_backoff)

    def wait(state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, RetryableError) and error.retry_after is not None:
            return min(error.retry_after, policy.deadline.total_seconds())
        return float(backoff(state)) if policy.initial_backoff > 0 else 0.0

    retrying = AsyncRetrying(
        retry=retry_if_exception_type(RetryableError),
        stop=stop_after_attempt(policy.max_attempts)
        | stop_after_delay(policy.deadline.total_seconds()),
        wait=wait,
        reraise=True,
    )

    async def call() -> ActionOutcome:
        # A coroutine function, so tenacity awaits each attempt (a lambda would not be).
        return await attempt()

    outcome: ActionOutcome = await retrying(call)
    return outcome
