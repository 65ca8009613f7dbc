"""A stop asked for while the server is still starting ends the start-up at once: PostgreSQL
away makes the migration keep trying for 30 s, which a SIGTERM must not wait out (bot/app.py's
lifespan, bot/runtime/stop_request.py). The signal itself, on a real process: test_graceful.py."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.app import build_services, create_app
from bot.config import BallastConfig
from bot.settings import Settings
from tests.principals import with_roster

# Nothing listens on port 1: every connection is refused, as while PostgreSQL restarts.
AWAY = "postgresql://postgres@127.0.0.1:1/test"


async def _until(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.02)


async def test_a_stop_while_migrating_against_an_absent_database_ends_the_start_up(
    runbooks_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    services = build_services(
        Settings(database_url=AWAY, runbooks=runbooks_dir), with_roster(BallastConfig()), environ={}
    )
    app = create_app(services)
    lifespan = app.router.lifespan_context(app)
    starting = asyncio.ensure_future(lifespan.__aenter__())
    await _until(
        lambda: "migrating the database at start failed" in caplog.text,
        20,
        "the migration never tried (and failed) to reach the database",
    )
    assert not starting.done()  # it keeps trying, for up to 30 s

    asked = time.monotonic()
    services.start_draining()  # what SIGTERM calls (bot/runtime/graceful.py)
    await asyncio.wait_for(starting, 5)
    await lifespan.__aexit__(None, None, None)
    assert time.monotonic() - asked < 5
    assert "stopped during start-up (migrating the database): nothing was served" in caplog.text
    assert not services.ready
    assert "ready:" not in caplog.text  # the workers never started


async def test_without_a_stop_the_start_up_goes_on_trying(
    runbooks_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The test above's control: the same start-up, unasked, is still trying after the moment
    it was stopped there (so that test saw the stop, not a start-up that gave up)."""
    caplog.set_level(logging.INFO)
    services = build_services(
        Settings(database_url=AWAY, runbooks=runbooks_dir), with_roster(BallastConfig()), environ={}
    )
    app = create_app(services)
    starting = asyncio.ensure_future(app.router.lifespan_context(app).__aenter__())
    await _until(lambda: "migrating the database at start failed" in caplog.text, 20, "never tried")
    await asyncio.sleep(1.0)
    assert not starting.done()
    starting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await starting
    await services.http.aclose()
    await services.db.close()
