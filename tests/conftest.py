"""Shared fixtures: a real database (SQLite and, where configured, PostgreSQL) and the app.

Every test that takes ``database_url`` runs once per database. PostgreSQL is enabled by
``BALLAST_TEST_POSTGRES_URL`` (CI sets it); each test gets its own schema, dropped after.
With ``BALLAST_TEST_REQUIRE_ALL=1`` (CI) a missing service fails the run instead of skipping.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

REPO = Path(__file__).resolve().parents[1]
POSTGRES_URL = os.environ.get("BALLAST_TEST_POSTGRES_URL")
REQUIRE_ALL = os.environ.get("BALLAST_TEST_REQUIRE_ALL") == "1"


# Real senders' webhook bodies, with their origins in README.md there.
FIXTURES = REPO / "tests" / "fixtures" / "alerts"


def need(condition: bool, what: str) -> None:
    """Skip locally when a service is missing; fail in CI, which must run everything."""
    if condition:
        return
    if REQUIRE_ALL:
        pytest.fail(f"{what} is required here (BALLAST_TEST_REQUIRE_ALL=1) but missing")
    pytest.skip(f"{what} not available")


def need_binary(name: str) -> str:
    path = shutil.which(name)
    need(path is not None, f"the {name} binary")
    assert path is not None
    return path


def _database_params() -> list[Any]:
    return ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=_database_params())
def database_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


class DatabaseUnderTest:
    """A database URL plus the connect arguments that isolate this test."""

    def __init__(self, url: str, connect_args: dict[str, Any], cleanup: Any = None) -> None:
        self.url = url
        self.connect_args = connect_args
        self.cleanup = cleanup

    def make(self) -> Any:
        from bot.store.database import Database

        return Database(self.url, connect_args=self.connect_args)


def _admin_sql(sql: str) -> None:
    """One statement on the PostgreSQL server under test (CREATE/DROP of schemas, databases)."""
    assert POSTGRES_URL is not None
    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(_plain_postgres_url())
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())


def _plain_postgres_url() -> str:
    assert POSTGRES_URL is not None
    return "postgresql://" + POSTGRES_URL.split("://", 1)[1]


@contextlib.contextmanager
def fresh_database_url(kind: str, tmp_path: Path, prefix: str) -> Iterator[str]:
    """A ``BALLAST_DATABASE_URL`` for a process or a CLI, which connect with nothing but the
    URL (so a per-test schema will not do): a SQLite file, or a new PostgreSQL database that is
    dropped afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'data' / 'ballast.db'}"
        return
    need(POSTGRES_URL is not None, "PostgreSQL (set BALLAST_TEST_POSTGRES_URL)")
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    _admin_sql(f'CREATE DATABASE "{name}"')
    try:
        yield _plain_postgres_url().rsplit("/", 1)[0] + f"/{name}"
    finally:
        _admin_sql(f'DROP DATABASE "{name}" WITH (FORCE)')


@contextlib.contextmanager
def _database(kind: str, tmp_path: Path) -> Iterator[DatabaseUnderTest]:
    if kind == "sqlite":
        yield DatabaseUnderTest(f"sqlite+aiosqlite:///{tmp_path / 'ballast.db'}", {})
        return
    need(POSTGRES_URL is not None, "PostgreSQL (set BALLAST_TEST_POSTGRES_URL)")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    _admin_sql(f'CREATE SCHEMA "{schema}"')
    try:
        yield DatabaseUnderTest(
            "postgresql+asyncpg://" + _plain_postgres_url().split("://", 1)[1],
            {"server_settings": {"search_path": schema}},
        )
    finally:
        _admin_sql(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def test_database(database_kind: str, tmp_path: Path) -> Iterator[DatabaseUnderTest]:
    """Each test using it runs on SQLite and on PostgreSQL."""
    with _database(database_kind, tmp_path) as database:
        yield database


@pytest.fixture
async def db(test_database: DatabaseUnderTest) -> AsyncIterator[Any]:
    """A migrated ``bot.store.database.Database`` of the test's kind (SQLite and PostgreSQL),
    closed after."""
    database = test_database.make()
    await database.migrate()
    yield database
    await database.close()


@pytest.fixture
def postgres_database(tmp_path: Path) -> Iterator[DatabaseUnderTest]:
    """For what only PostgreSQL can do (several replicas on one database)."""
    with _database("postgres", tmp_path) as database:
        yield database


class Clock:
    """A clock tests move by hand."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 11, 27, 3, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def runbooks_dir() -> Path:
    return REPO / "runbooks"


class Harness:
    """The app in-process over real HTTP semantics (httpx ASGI transport), lifespan run."""

    def __init__(self, services: Any, client: httpx.AsyncClient) -> None:
        self.services = services
        self.client = client  # acts as tests.principals.BRIDGE
        self._clients: list[httpx.AsyncClient] = []

    def as_(self, who: str | None) -> httpx.AsyncClient:
        """A client acting as the roster's principal ``who`` (None: no credentials)."""
        from tests.principals import ROSTER

        headers = {} if who is None else ROSTER[who].headers
        client = httpx.AsyncClient(
            transport=self.client._transport, base_url=self.client.base_url, headers=headers
        )
        self._clients.append(client)
        return client

    @property
    def anonymous(self) -> httpx.AsyncClient:
        return self.as_(None)

    async def settle(self) -> int:
        """Process everything stored so far, as the background engine would, let the auto
        mitigations it started finish, and announce the updates held for their window."""
        done = int(await self.services.engine.process_pending())
        await self.services.auto.drain()
        if self.services.announcer is not None:
            await self.services.announcer.flush()
        return done

    async def post_fixture(self, source: str, path: Path, **headers: str) -> httpx.Response:
        return await self.client.post(
            f"/webhooks/{source}",
            content=path.read_bytes(),
            headers={"content-type": "application/json", **headers},
        )


@pytest.fixture
async def make_harness(
    test_database: DatabaseUnderTest, clock: Clock, runbooks_dir: Path, tmp_path: Path
) -> AsyncIterator[Any]:
    from bot.app import build_services, create_app
    from bot.settings import Settings

    stack: list[Any] = []

    async def make(
        config: Any = None,
        http_transport: Any = None,
        environ: Any = None,
        retry_backoff: float | None = None,
        **settings: Any,
    ) -> Harness:
        from bot.config import BallastConfig, PostmortemConfig
        from tests.principals import BRIDGE, with_roster

        settings.setdefault("runbooks", runbooks_dir)
        config = with_roster(config or BallastConfig())
        if "postmortem" not in config.model_fields_set:
            # Drafts written on resolve go to the test's folder, never into the checkout.
            config = config.model_copy(
                update={"postmortem": PostmortemConfig(folder=tmp_path / "postmortems")}
            )
        services = build_services(
            Settings(database_url=test_database.url, **settings),
            config,
            clock=clock,
            db=test_database.make(),
            http_transport=http_transport,
            environ=environ if environ is not None else {},
            retry_backoff=retry_backoff,
        )
        app = create_app(services)
        lifespan = app.router.lifespan_context(app)
        await lifespan.__aenter__()
        stack.append(lifespan)
        # Tests move the clock by hand and tick timers themselves (h.services.timers.tick()).
        services.timers.shutdown()
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://ballast.test",
            headers=BRIDGE.headers,
        )
        stack.append(client)
        harness = Harness(services, client)
        stack.append(harness)
        return harness

    yield make
    for item in reversed(stack):
        if isinstance(item, Harness):
            for extra in item._clients:
                await extra.aclose()
        elif isinstance(item, httpx.AsyncClient):
            await item.aclose()
        else:
            await item.__aexit__(None, None, None)
