from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import POSTGRES_URL, REPO
from tests.e2e.processes import BallastServer

API_RUNBOOKS = REPO / "tests" / "api" / "runbooks"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def server_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The server's BALLAST_DATABASE_URL: a fresh SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'data' / 'ballast.db'}"
        return
    from tests.conftest import need

    need(POSTGRES_URL is not None, "PostgreSQL (set BALLAST_TEST_POSTGRES_URL)")
    assert POSTGRES_URL is not None
    import asyncio
    import uuid

    import asyncpg

    name = f"ballast_e2e_{uuid.uuid4().hex[:10]}"
    base = "postgresql://" + POSTGRES_URL.split("://", 1)[1]

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(base)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run(f'CREATE DATABASE "{name}"'))
    try:
        yield base.rsplit("/", 1)[0] + f"/{name}"
    finally:
        asyncio.run(run(f'DROP DATABASE "{name}" WITH (FORCE)'))


@pytest.fixture
def make_server(tmp_path: Path, server_database_url: str) -> Iterator[object]:
    servers: list[BallastServer] = []
    runbooks = tmp_path / "runbooks"
    shutil.copytree(API_RUNBOOKS, runbooks)

    def make(**env: str) -> BallastServer:
        server = BallastServer(
            tmp_path,
            {
                "BALLAST_DATABASE_URL": server_database_url,
                "BALLAST_RUNBOOKS": str(runbooks),
                "BALLAST_LOG_FORMAT": "json",
                **env,
            },
            tmp_path / "ballast.log",
        )
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()
