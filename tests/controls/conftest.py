"""Fixtures for the built-in control store: a migrated database, the store, the HTTP app.

The app is Ballast's own (``bot.app``): its store, OFREP and operator API, in-process over
httpx or on a real loopback port for clients that speak real HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from typer.testing import CliRunner

from bot.app import build_services, create_app
from bot.cli import build_cli
from bot.config import load_config
from bot.controls import BuiltinControlStore
from bot.settings import Settings
from bot.store.database import Database
from tests.conftest import Clock, DatabaseUnderTest, fresh_database_url
from tests.principals import BRIDGE, with_roster

T = TypeVar("T")

API_TOKEN = "api-token-1"
AUTH = BRIDGE.headers  # may name the acting person in the body


@pytest.fixture
def store(db: Database, clock: Clock) -> BuiltinControlStore:
    return BuiltinControlStore(db, clock)


def build_app(
    test_database: DatabaseUnderTest,
    clock: Clock,
    runbooks_dir: Path,
    *,
    roster: bool = True,
    **settings: Any,
) -> FastAPI:
    """Ballast's app on the test's database (its own engine, like another replica), with the
    test principals of tests.principals unless ``roster`` is false."""
    config = load_config(settings.get("config"))
    services = build_services(
        Settings(database_url=test_database.url, runbooks=runbooks_dir, **settings),
        with_roster(config) if roster else config,
        clock=clock,
        db=test_database.make(),
    )
    return create_app(services)


@pytest.fixture
async def make_client(
    test_database: DatabaseUnderTest, clock: Clock, runbooks_dir: Path
) -> AsyncIterator[Callable[..., Awaitable[httpx.AsyncClient]]]:
    """``await make_client(**settings)``: an HTTP client on the app, lifespan run, acting as
    tests.principals.BRIDGE."""
    stack = contextlib.AsyncExitStack()

    async def make(roster: bool = True, **settings: Any) -> httpx.AsyncClient:
        app = build_app(test_database, clock, runbooks_dir, roster=roster, **settings)
        await stack.enter_async_context(app.router.lifespan_context(app))
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://ballast.test",
            headers=AUTH if roster else {},  # acts as BRIDGE unless a request says otherwise
        )
        await stack.enter_async_context(client)
        return client

    async with stack:
        yield make


class LoopbackServer:
    """The app under uvicorn in a background thread, on a loopback port bound up front.

    Binding the socket here (not picking a free port for uvicorn to bind later) leaves no
    window for another process to take the port.
    """

    def __init__(self, app: FastAPI) -> None:
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.port = int(self.socket.getsockname()[1])
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.socket]}, name="uvicorn", daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise AssertionError("uvicorn did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.socket.close()


@pytest.fixture
def serve(
    test_database: DatabaseUnderTest, clock: Clock, runbooks_dir: Path
) -> Iterator[Callable[..., LoopbackServer]]:
    """``serve(**settings)``: Ballast on real HTTP, for clients that speak real HTTP."""
    servers: list[LoopbackServer] = []

    def start(**settings: Any) -> LoopbackServer:
        server = LoopbackServer(build_app(test_database, clock, runbooks_dir, **settings))
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


class SyncStore:
    """The store from synchronous code (a test that also drives a synchronous SDK).

    Each call opens its own engine, like another replica or the CLI would.
    """

    def __init__(self, test_database: DatabaseUnderTest, clock: Clock) -> None:
        self.test_database = test_database
        self.clock = clock

    def run(self, work: Callable[[BuiltinControlStore], Awaitable[T]]) -> T:
        async def main() -> T:
            database: Database = self.test_database.make()
            try:
                return await work(BuiltinControlStore(database, self.clock))
            finally:
                await database.close()

        return asyncio.run(main())


@pytest.fixture
def sync_store(test_database: DatabaseUnderTest, clock: Clock) -> SyncStore:
    return SyncStore(test_database, clock)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def cli_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A ``BALLAST_DATABASE_URL`` for the CLI: a SQLite file, or a fresh PostgreSQL database,
    migrated by ``ballast db upgrade`` (the CLI refuses to create a database itself)."""
    with fresh_database_url(request.param, tmp_path, "ballast_cli") as url:
        result = CliRunner().invoke(build_cli(), ["db", "upgrade", "--database-url", url])
        assert result.exit_code == 0, result.output
        yield url
