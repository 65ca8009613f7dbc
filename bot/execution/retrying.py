"""Retries for actions: only ``RetryableError``, with backoff, within a deadline.

A server's ``Retry-After`` is honoured (capped by the deadline); otherwise exponential backoff
with jitter. ``FinalError`` (a 4xx, a bad value) is never retried. Any other exception an
action raises (a bug, an input it did not expect: an alert label httpx cannot encode) is a
``FinalError`` too (:func:`guarded`), so it fails the execution, journaled, and never
reaches the server or its start-up.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential_jitter,
)

from actions.context import ActionOutcome
from actions.errors import ActionError, FinalError, RetryableError

log = logging.getLogger(__name__)


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
        return await guarded(attempt)

    outcome: ActionOutcome = await retrying(call)
    return outcome


T = TypeVar("T")


async def guarded(attempt: Callable[[], Awaitable[T]]) -> T:
    """One attempt; an exception that is not an ``ActionError`` becomes a ``FinalError``.

    The message names only the exception's type: its text may quote a header or a secret.
    The traceback goes to the log.
    """
    try:
        return await attempt()
    except ActionError:
        raise
    except Exception as err:
        log.exception("an action raised %s; the execution fails", type(err).__name__)
        raise FinalError(
            f"the action raised {type(err).__name__} (an input it did not expect, or a bug); "
            "the traceback is in Ballast's log"
        ) from err
