from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO, fresh_database_url
from tests.e2e.processes import BallastServer
from tests.principals import roster_yaml

API_RUNBOOKS = REPO / "tests" / "api" / "runbooks"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def server_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The server's BALLAST_DATABASE_URL: a fresh SQLite file, or a fresh PostgreSQL database."""
    with fresh_database_url(request.param, tmp_path, "ballast_e2e") as url:
        yield url


@pytest.fixture
def make_server(tmp_path: Path, server_database_url: str) -> Iterator[object]:
    servers: list[BallastServer] = []
    runbooks = tmp_path / "runbooks"
    shutil.copytree(API_RUNBOOKS, runbooks)

    config = tmp_path / "roster.yaml"
    config.write_text(roster_yaml())

    def make(**env: str) -> BallastServer:
        """``ballast serve`` with the test principals (tests.principals) unless ``env`` names
        another BALLAST_CONFIG."""
        server = BallastServer(
            tmp_path,
            {
                "BALLAST_DATABASE_URL": server_database_url,
                "BALLAST_RUNBOOKS": str(runbooks),
                "BALLAST_LOG_FORMAT": "json",
                "BALLAST_CONFIG": str(config),
                **env,
            },
            tmp_path / "ballast.log",
        )
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()
