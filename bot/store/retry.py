"""The one transaction-retry helper: run a unit of work in a transaction, again if it conflicted.

A conflict (:func:`bot.store.transient.should_redo`) rolled the whole transaction back, so
nothing of the attempt was committed and running the work again from the start is safe. The
work must therefore keep everything it produces inside what it returns (no side effects before
the commit). Retries back off by a random few milliseconds times the attempt number, so
two replicas that collided do not collide again in step.

The first attempt runs without tenacity: on SQLite under a webhook storm the incident engine
commits one alert per transaction, and nearly every transaction succeeds first time, so the
retry machinery (about 80 µs to build and enter) is only set up once an attempt has failed.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
)

from bot.store.database import Database
from bot.store.transient import reason, should_redo

log = logging.getLogger(__name__)

T = TypeVar("T")

TRANSIENT_RETRIES = 5  # attempts in all, the first included


async def in_transaction(
    db: Database,
    work: Callable[[AsyncSession], Awaitable[T]],
    *,
    attempts: int = TRANSIENT_RETRIES,
    what: str | None = None,
) -> T:
    """``work(session)`` in one transaction, committed; redone while it conflicts, up to
    ``attempts`` times in all (then the last error is raised, as is any other error).
    ``what``, when given, names the work in an info line per retry."""

    async def once() -> T:
        async with db.transaction() as session:
            return await work(session)

    try:
        return await once()
    except Exception as err:
        if attempts <= 1 or not should_redo(err):
            raise
        _note(what, err)
    await asyncio.sleep(_backoff(1))

    def wait(state: RetryCallState) -> float:
        # tenacity's attempt 1 is the second in all: the first ran above.
        return _backoff(state.attempt_number + 1)

    def before_sleep(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        if error is not None:
            _note(what, error)

    retrying = AsyncRetrying(
        retry=retry_if_exception(should_redo),
        stop=stop_after_attempt(attempts - 1),
        wait=wait,
        before_sleep=before_sleep,
        reraise=True,
    )
    result: T = await retrying(once)
    return result


def _backoff(failed_attempts: int) -> float:
    """5-50 ms times the number of attempts made, at random."""
    return random.uniform(0.005, 0.05) * failed_attempts


def _note(what: str | None, err: BaseException) -> None:
    if what is not None:
        log.info("%s conflicted with another writer (%s); retrying", what, reason(err))
