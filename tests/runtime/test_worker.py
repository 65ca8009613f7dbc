"""The one worker loop: wake, rest, survive a failing pass, stop gracefully."""

from __future__ import annotations

import asyncio
import logging

import pytest

from bot.runtime.worker import WorkerLoop

log = logging.getLogger(__name__)


class Passes:
    """A pass that records when it ran and answers from a script."""

    def __init__(self, *answers: float | Exception | None) -> None:
        self.answers = list(answers)
        self.count = 0
        self.ran = asyncio.Event()
        self.counted = asyncio.Condition()
        self.block: asyncio.Event | None = None
        self.finished = 0

    async def __call__(self) -> float | None:
        self.count += 1
        self.ran.set()
        async with self.counted:
            self.counted.notify_all()
        if self.block is not None:
            await self.block.wait()
        self.finished += 1
        answer = self.answers.pop(0) if self.answers else None
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def next_run(self, within: float = 2.0) -> None:
        self.ran.clear()
        await asyncio.wait_for(self.ran.wait(), within)


def loop_of(passes: Passes, poll: float = 60.0, **options: bool) -> WorkerLoop:
    return WorkerLoop(passes, poll_interval=poll, log=log, failure="pass failed", **options)


async def test_a_wake_reaches_the_pass_in_one_turn_of_the_loop() -> None:
    """Every turn of the event loop before the pass starts is one in which other ready work
    (a webhook's answer, an OFREP evaluation) goes first: a stored alert's wake-up takes one
    (three with ``asyncio.wait_for`` on Python 3.11, which waits in a task of its own)."""
    passes = Passes()
    loop = loop_of(passes)
    task = asyncio.create_task(loop.run())
    try:
        await passes.next_run()
        for _ in range(5):
            await asyncio.sleep(0)  # the loop rests on its wake-up
        loop.wake()
        await asyncio.sleep(0)  # one turn
        assert passes.count == 2
    finally:
        await loop.stop(task)


async def test_wake_starts_a_pass_before_the_poll_interval() -> None:
    passes = Passes()
    loop = loop_of(passes)
    task = asyncio.create_task(loop.run())
    await passes.next_run()
    assert passes.count == 1
    await asyncio.sleep(0.05)
    assert passes.count == 1  # resting: the poll interval is a minute
    loop.wake()
    await passes.next_run(within=1.0)
    assert passes.count == 2
    await loop.stop(task)
    assert task.done()


async def test_a_wake_during_a_pass_runs_another_right_after() -> None:
    passes = Passes()
    passes.block = asyncio.Event()
    loop = loop_of(passes)
    task = asyncio.create_task(loop.run())
    await passes.next_run()
    loop.wake()  # new work arrived while the pass was busy
    passes.block.set()
    await passes.next_run(within=1.0)
    assert passes.count == 2
    await loop.stop(task)


async def test_zero_means_again_at_once_and_seconds_shorten_the_rest() -> None:
    passes = Passes(0, 0, 0.01)
    loop = loop_of(passes)
    task = asyncio.create_task(loop.run())
    async with asyncio.timeout(1.0), passes.counted:
        await passes.counted.wait_for(lambda: passes.count >= 4)
    await asyncio.sleep(0.05)
    assert passes.count == 4  # the fourth answered None: a minute's rest
    await loop.stop(task)


async def test_a_failing_pass_is_logged_and_the_loop_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    passes = Passes(RuntimeError("boom"))
    loop = loop_of(passes, poll=0.01)
    task = asyncio.create_task(loop.run())
    await passes.next_run()
    await passes.next_run(within=1.0)
    assert not task.done()
    assert "pass failed" in caplog.text
    assert "boom" in caplog.text
    await loop.stop(task)


async def test_stop_lets_the_current_pass_finish() -> None:
    passes = Passes()
    passes.block = asyncio.Event()
    loop = loop_of(passes)
    task = asyncio.create_task(loop.run())
    await passes.next_run()
    stopping = asyncio.create_task(loop.stop(task, grace=5.0))
    await asyncio.sleep(0.05)
    assert loop.stopping
    assert not stopping.done()
    passes.block.set()
    await asyncio.wait_for(stopping, 1.0)
    assert passes.finished == 1
    assert passes.count == 1
    assert task.done()
    assert not task.cancelled()


async def test_stop_cancels_a_pass_that_outlasts_the_grace() -> None:
    passes = Passes()
    passes.block = asyncio.Event()  # never set
    loop = loop_of(passes)
    task = asyncio.create_task(loop.run())
    await passes.next_run()
    await asyncio.wait_for(loop.stop(task, grace=0.05), 1.0)
    assert task.cancelled()
    assert passes.finished == 0


async def test_rest_first_waits_before_the_first_pass() -> None:
    passes = Passes()
    loop = loop_of(passes, poll=0.2, rest_first=True)
    task = asyncio.create_task(loop.run())
    await asyncio.sleep(0.05)
    assert passes.count == 0
    await passes.next_run(within=1.0)
    await loop.stop(task)
