"""``GracefulServer``'s signal handling in this process (the real shutdown: test_graceful.py):
SIGTERM turns readiness false, then stops after the delay; at once while still starting."""

from __future__ import annotations

import signal
import time

import uvicorn

from bot.runtime.graceful import GracefulServer, ShutdownTimes
from tests.e2e.processes import wait_until


async def _app(scope: object, receive: object, send: object) -> None:
    raise AssertionError("never served")


def _server(delay: float) -> tuple[GracefulServer, list[str]]:
    calls: list[str] = []
    config = uvicorn.Config(_app, host="127.0.0.1", port=0, log_config=None)
    server = GracefulServer(config, ShutdownTimes(delay, 1.0), lambda: calls.append("draining"))
    return server, calls


def test_sigterm_while_serving_drains_first_then_stops_after_the_delay() -> None:
    server, calls = _server(delay=0.2)
    server.started = True
    sent = time.monotonic()
    server.handle_exit(signal.SIGTERM, None)
    assert calls == ["draining"]
    assert not server.should_exit  # still serving, unready, for the delay
    wait_until(lambda: server.should_exit, 5, "the stop after the delay")
    assert time.monotonic() - sent >= 0.2


def test_a_second_sigterm_changes_nothing() -> None:
    server, calls = _server(delay=0.2)
    server.started = True
    server.handle_exit(signal.SIGTERM, None)
    server.handle_exit(signal.SIGTERM, None)
    assert calls == ["draining"]
    assert not server.force_exit


def test_sigterm_while_starting_stops_at_once() -> None:
    server, calls = _server(delay=30.0)
    assert not server.started
    server.handle_exit(signal.SIGTERM, None)
    assert calls == ["draining"]  # which also ends the app's start-up (bot/app.py)
    assert server.should_exit


def test_sigint_stops_at_once_without_draining() -> None:
    server, calls = _server(delay=30.0)
    server.started = True
    server.handle_exit(signal.SIGINT, None)
    assert server.should_exit
    assert calls == []
