"""The one background worker loop: run a pass, rest until woken or a timeout, stop gracefully.

The incident engine, the Slack delivery worker and SQLite's WAL checkpoint each run like this:

* a *pass* does what is there to do and says when to look again: ``0`` at once (more may be
  waiting), a number of seconds, or ``None`` for the poll interval;
* :meth:`WorkerLoop.wake` cuts the rest short (a webhook stored alerts, a message was queued);
  a wake that comes during a pass makes the next pass start right after it;
* a pass that raises is logged and the loop goes on after the poll interval — a worker that
  died on one bad moment would silently stop processing;
* :meth:`WorkerLoop.stop` lets the pass in progress finish (cancelling mid-transaction would
  leave a pooled connection in an unknown state) and cancels only after a grace period.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

Pass = Callable[[], Awaitable[float | None]]


class WorkerLoop:
    def __init__(
        self,
        run_pass: Pass,
        *,
        poll_interval: float,
        log: logging.Logger,
        failure: str,
        rest_first: bool = False,
    ) -> None:
        """``failure``: the log line when a pass raises; ``rest_first``: wait one interval
        before the first pass."""
        self._pass = run_pass
        self.poll_interval = poll_interval
        self._log = log
        self._failure = failure
        self._rest_first = rest_first
        self._wake = asyncio.Event()
        self._stopping = False
        # Set by stop(): ends a pass's own rests (the engine's pacing) at once.
        self.stopped = asyncio.Event()

    @property
    def stopping(self) -> bool:
        """True once :meth:`stop` was called: a long pass should end at its next commit."""
        return self._stopping

    def wake(self) -> None:
        """Start the next pass now (or right after the current one)."""
        self._wake.set()

    async def run(self) -> None:
        """Run passes until stopped."""
        self._stopping = False
        self.stopped.clear()
        if self._rest_first:
            await self._rest(None)
        while not self._stopping:
            self._wake.clear()
            try:
                after = await self._pass()
            except Exception:
                self._log.exception(self._failure)
                after = None
            if after == 0:
                continue
            await self._rest(after)

    async def _rest(self, after: float | None) -> None:
        timeout = self.poll_interval if after is None else min(self.poll_interval, after)
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for runs the wait in a task of its
        # own, so a wake-up took three turns of the event loop to reach the pass (each one a
        # turn for every other ready request first) instead of one.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._wake.wait()

    async def stop(self, worker: asyncio.Task[None], grace: float = 10.0) -> None:
        """Let the current pass finish, then end ``worker``; cancel only after ``grace``."""
        self._stopping = True
        self.stopped.set()
        self._wake.set()
        try:
            await asyncio.wait_for(asyncio.shield(worker), grace)
        except TimeoutError:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
