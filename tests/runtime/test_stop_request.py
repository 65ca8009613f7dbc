"""A stop asked for from a signal handler or another thread cancels the work it races
(bot/runtime/stop_request.py), and only then."""

from __future__ import annotations

import asyncio
import os
import signal
import threading

import pytest

from bot.runtime.stop_request import Stopped, StopRequest


async def _long_work(cancelled: asyncio.Event) -> None:
    """A minute's wait that notes its cancellation."""
    try:
        await asyncio.sleep(60)
    except asyncio.CancelledError:
        cancelled.set()
        raise


async def test_work_that_finishes_first_gives_its_result() -> None:
    async def work() -> int:
        await asyncio.sleep(0)
        return 7

    stop = StopRequest()
    assert await stop.unless_requested(work()) == 7
    assert not stop.requested


async def test_the_work_s_own_error_is_raised_as_it_is() -> None:
    async def work() -> None:
        raise LookupError("its own")

    with pytest.raises(LookupError, match="its own"):
        await StopRequest().unless_requested(work())


async def test_a_request_cancels_the_work_at_once() -> None:
    cancelled = asyncio.Event()

    stop = StopRequest()
    asyncio.get_running_loop().call_later(0.05, stop.request)
    with pytest.raises(Stopped):
        await asyncio.wait_for(stop.unless_requested(_long_work(cancelled)), 5)
    assert cancelled.is_set()  # waited for, not left running
    assert stop.requested


async def test_a_request_made_before_the_work_never_starts_it() -> None:
    started = False

    async def work() -> None:
        nonlocal started
        started = True

    stop = StopRequest()
    stop.request()
    with pytest.raises(Stopped):
        await stop.unless_requested(work())
    assert not started


async def test_a_request_from_another_thread_wakes_the_loop() -> None:
    stop = StopRequest()
    threading.Timer(0.05, stop.request).start()
    with pytest.raises(Stopped):
        await asyncio.wait_for(stop.unless_requested(asyncio.sleep(60)), 5)


async def test_a_request_from_a_signal_handler_wakes_the_loop() -> None:
    stop = StopRequest()
    previous = signal.signal(signal.SIGUSR1, lambda _sig, _frame: stop.request())
    try:
        asyncio.get_running_loop().call_later(0.05, os.kill, os.getpid(), signal.SIGUSR1)
        with pytest.raises(Stopped):
            await asyncio.wait_for(stop.unless_requested(asyncio.sleep(60)), 5)
    finally:
        signal.signal(signal.SIGUSR1, previous)


async def test_what_the_cancelled_work_raises_on_its_way_out_is_still_a_stop() -> None:
    async def work() -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            raise ConnectionError("the connection was cut") from None

    stop = StopRequest()
    asyncio.get_running_loop().call_later(0.05, stop.request)
    with pytest.raises(Stopped):
        await asyncio.wait_for(stop.unless_requested(work()), 5)


async def test_the_same_request_serves_later_work_and_cancelling_the_waiter_cancels_the_work() -> (
    None
):
    stop = StopRequest()
    assert await stop.unless_requested(asyncio.sleep(0, "first")) == "first"
    cancelled = asyncio.Event()

    waiter = asyncio.ensure_future(stop.unless_requested(_long_work(cancelled)))
    await asyncio.sleep(0.05)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert cancelled.is_set()
    stop.request()
    with pytest.raises(Stopped):
        await stop.unless_requested(asyncio.sleep(60))
