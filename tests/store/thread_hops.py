"""Counting the calls queued on aiosqlite's connection threads: each is a thread hop (a turn of
the event loop in which other work goes first), which the SQLite adapter spares where it can."""

from __future__ import annotations

from typing import Any

import aiosqlite
import pytest


def recording_thread_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The name of every function queued on any aiosqlite connection's thread from now on
    (``<lambda>`` for a statement, ``commit``, ``rollback``...); clear the list to restart."""
    calls: list[str] = []
    original = aiosqlite.Connection._execute

    async def recorded(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(getattr(fn, "__name__", "statement"))
        return await original(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", recorded)
    return calls
