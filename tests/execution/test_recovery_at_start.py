"""A replica starts even when its recovery pass before ready meets a transient database error
(seen under chaos: a connection the server had just terminated); its recovery loop then makes
the pass at once instead of after a third of a lease. Any other error still stops the start."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from bot.execution.executor import MitigationExecutor


def failing_first(
    monkeypatch: pytest.MonkeyPatch, error: Exception, executors: list[Any] | None = None
) -> list[str]:
    """The executor's recovery raises ``error`` on its first pass only; the passes made
    (``executors`` gets the executor, whose database a start that failed leaves open)."""
    passes: list[str] = []
    original = MitigationExecutor.recover

    async def recover(self: MitigationExecutor) -> int:
        if executors is not None:
            executors.append(self)
        passes.append("failed" if not passes else "ran")
        if len(passes) == 1:
            raise error
        return await original(self)

    monkeypatch.setattr(MitigationExecutor, "recover", recover)
    return passes


async def test_a_transient_error_in_the_first_pass_does_not_stop_the_start(
    make_harness: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    lost = sqlite3.OperationalError("connection was closed in the middle of operation")
    passes = failing_first(monkeypatch, OperationalError("SELECT executions", None, lost))
    with caplog.at_level(logging.WARNING, logger="bot.app"):
        h = await make_harness()
    assert (await h.client.get("/readyz")).status_code == 200
    assert any("recovery at start failed" in r.getMessage() for r in caplog.records)
    for _ in range(200):  # the loop's pass comes at once, not a third of a lease later
        if passes == ["failed", "ran"]:
            break
        await asyncio.sleep(0.01)
    assert passes == ["failed", "ran"]


async def test_any_other_error_in_the_first_pass_still_stops_the_start(
    make_harness: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    executors: list[Any] = []
    failing_first(monkeypatch, RuntimeError("a bug"), executors)
    try:
        with pytest.raises(RuntimeError, match="a bug"):
            await make_harness()
    finally:
        for executor in executors:  # the process would exit; the test closes what it opened
            await executor._db.close()
