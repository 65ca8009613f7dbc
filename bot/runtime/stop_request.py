"""A stop asked for by a signal, which work on the event loop can race.

Why: SIGTERM reaches the server in uvicorn's signal handler (bot/runtime/graceful.py), outside
every task. Once serving, the shutdown waits for work in flight, as it should; but a server
still starting has nothing in flight, and its start-up can wait a long time (PostgreSQL away:
the migration keeps trying for 30 s; a runbook remote's first fetch until its timeout). A
rolling update or a ``systemctl stop`` must not wait that out, so the start-up runs through
:meth:`StopRequest.unless_requested`, which cancels it the moment a stop is asked for.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


class Stopped(Exception):
    """A stop was asked for before the work finished; the work was cancelled."""


class StopRequest:
    """Asked for once, from anywhere: a signal handler, another thread or a task."""

    def __init__(self) -> None:
        self._requested = False
        self._event: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def requested(self) -> bool:
        return self._requested

    def request(self) -> None:
        """Ask for the stop. Safe in a signal handler and from other threads: the loop is
        woken through its thread-safe queue, never touched directly."""
        self._requested = True
        loop, event = self._loop, self._event
        if loop is not None and event is not None and not loop.is_closed():
            loop.call_soon_threadsafe(event.set)

    async def unless_requested(self, work: Awaitable[T]) -> T:
        """``work``'s result, unless a stop is (or was) asked for first: then ``work`` is
        cancelled, waited for, and :class:`Stopped` raised. Work that finished in the same
        turn as the request keeps its result."""
        if self._event is None:
            self._event = asyncio.Event()
            self._loop = asyncio.get_running_loop()
        if self._requested:  # before the call (or as the lines above ran): never started
            if inspect.iscoroutine(work):
                work.close()
            raise Stopped("a stop was asked for before the work began")
        task = asyncio.ensure_future(work)
        stop = asyncio.ensure_future(self._event.wait())
        try:
            await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            unfinished = not task.done()
            if unfinished:
                task.cancel()
                # What the cancelled work raises on its way out is no news: we are stopping.
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if unfinished:
            raise Stopped("a stop was asked for before the work finished")
        return task.result()
