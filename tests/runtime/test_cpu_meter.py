"""The CPU meter charges a piece of async work for its own steps, not for the tasks that ran
while it waited (what the engine's pacing was charged for on PostgreSQL)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Generator

import pytest

from bot.runtime.cpu_meter import CpuMeter


def burn(seconds: float) -> None:
    """Spend ``seconds`` of this thread's CPU."""
    until = time.thread_time() + seconds
    while time.thread_time() < until:
        pass


async def work_that_waits(own: float, others_ran: asyncio.Event) -> str:
    burn(own / 2)
    await others_ran.wait()  # another task burns meanwhile
    burn(own / 2)
    return "done"


async def other_task(seconds: float, ran: asyncio.Event) -> None:
    burn(seconds)
    ran.set()


async def test_the_work_is_charged_its_own_cpu_not_the_other_tasks() -> None:
    meter = CpuMeter()
    ran = asyncio.Event()
    started = time.thread_time()
    other = asyncio.create_task(other_task(0.15, ran))
    result = await meter.run(work_that_waits(0.04, ran))
    around = time.thread_time() - started
    await other
    assert result == "done"
    assert around >= 0.15  # what timing around the await charged (the fault)
    assert 0.035 <= meter.seconds < 0.1, meter.seconds


async def test_it_adds_up_over_several_runs() -> None:
    meter = CpuMeter()
    for _ in range(3):
        await meter.run(asyncio.sleep(0, result=None))
        await meter.run(asyncio.to_thread(burn, 0.05))  # another thread's CPU is not its own
    assert meter.seconds < 0.03
    ran = asyncio.Event()
    ran.set()
    await meter.run(work_that_waits(0.04, ran))
    assert meter.seconds >= 0.035


async def test_errors_and_cancellation_pass_through() -> None:
    meter = CpuMeter()

    async def fails() -> None:
        await asyncio.sleep(0)
        raise ValueError("from the work")

    with pytest.raises(ValueError, match="from the work"):
        await meter.run(fails())

    cleaned = asyncio.Event()

    async def waits_forever() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cleaned.set()

    task = asyncio.create_task(meter.run(waits_forever()))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cleaned.is_set()  # the cancellation reached the work itself


def test_closing_the_metered_awaitable_closes_the_work() -> None:
    """A coroutine dropped unfinished (its task garbage-collected, the loop closed) is closed:
    the work's own clean-up runs, as it would without the meter."""
    cleaned: list[str] = []

    class Suspend:
        def __await__(self) -> Generator[None, None, None]:
            yield  # suspended until sent something: driven by hand below, no event loop

    async def work() -> None:
        try:
            await Suspend()
        finally:
            cleaned.append("work")

    metered = CpuMeter().run(work())
    metered.send(None)  # to the work's first suspension
    metered.close()
    assert cleaned == ["work"]
