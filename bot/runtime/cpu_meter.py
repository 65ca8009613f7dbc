"""The CPU one piece of async work spent itself, not the other tasks that ran in its waits.

The incident engine keeps to a share of the event loop under a webhook storm, so it has to
know what its batch cost. ``time.thread_time()`` around the batch counted every webhook the
loop served while the batch waited for PostgreSQL (on PostgreSQL most of a batch's time is
such waits): the engine was charged for the webhooks' CPU too and rested for it. A
:class:`CpuMeter` drives the awaitable itself and reads the thread's CPU clock only around
the steps that are the work's own (each ``send`` or ``throw`` into its coroutine): what runs
between them is other tasks. Two clock reads per step, a fraction of a microsecond each.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Generator
from typing import Any, TypeVar

T = TypeVar("T")


class CpuMeter:
    """Accumulates, in :attr:`seconds`, the CPU of the awaitables it runs (:meth:`run`)."""

    def __init__(self) -> None:
        self.seconds = 0.0

    async def run(self, work: Awaitable[T]) -> T:
        """Await ``work``, adding the CPU its own steps took to :attr:`seconds`."""
        return await _Metered(work, self)


class _Metered(Awaitable[T]):
    def __init__(self, work: Awaitable[T], meter: CpuMeter) -> None:
        self._work = work
        self._meter = meter

    def __await__(self) -> Generator[Any, Any, T]:
        steps = self._work.__await__()
        sent: Any = None
        thrown: BaseException | None = None
        while True:
            started = time.thread_time()
            try:
                yielded = steps.send(sent) if thrown is None else steps.throw(thrown)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]
            finally:
                self._meter.seconds += time.thread_time() - started
            try:
                sent, thrown = (yield yielded), None
            except GeneratorExit:
                steps.close()
                raise
            except BaseException as err:  # a cancellation, passed on into the work
                sent, thrown = None, err
