"""The backup and restore commands of docs/deploy.md, run as written against a real server.

The commands are taken from the page itself (the fenced block after the comment naming it),
so the documentation and this test cannot drift apart. Each scenario: a server stores an
incident, the backup is taken (while it runs), a second incident arrives, the server stops,
the restore runs, and a restarted server has the first incident and not the second.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO, fresh_database_url, need_binary
from tests.deploy.deployment_facts import DOCS, incident_tools, markdown_blocks, tool_failure
from tests.e2e.processes import BallastServer, wait_until

pytestmark = pytest.mark.slow


def documented(name: str) -> str:
    """The body of the block whose not-run comment names ``(name)``."""
    found = [body for before, _, body in markdown_blocks(DOCS) if f"({name})" in before]
    assert len(found) == 1, f"docs/deploy.md has {len(found)} blocks marked ({name})"
    assert "tests/deploy/test_backups.py" in next(
        before for before, _, _ in markdown_blocks(DOCS) if f"({name})" in before
    )
    return found[0]


def run_documented(name: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", documented(name)],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"{name} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def open_incident(server: BallastServer, tool: str) -> None:
    response = httpx.post(
        f"{server.url}/webhooks/alertmanager",
        json=tool_failure(tool),
        headers={"authorization": "Bearer backup-test-api-token"},  # the service "api"
        timeout=10,
    )
    assert response.status_code == 200, response.text
    wait_until(lambda: tool in incident_tools(server), 60, f"the {tool} incident")


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "data").mkdir()
    return tmp_path


def server_on(workdir: Path, database_url: str) -> BallastServer:
    return BallastServer(
        workdir,
        {
            "BALLAST_DATABASE_URL": database_url,
            "BALLAST_RUNBOOKS": str(REPO / "runbooks"),
            "BALLAST_API_TOKEN": "backup-test-api-token",
        },
        workdir / "ballast.log",
    )


@pytest.fixture
def servers() -> Iterator[list[BallastServer]]:
    started: list[BallastServer] = []
    yield started
    for server in started:
        server.stop()


def count_rows(path: Path, table: str) -> int:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    finally:
        conn.close()


def test_sqlite_online_backup_and_restore(workdir: Path, servers: list[BallastServer]) -> None:
    need_binary("sqlite3")
    database = workdir / "data" / "ballast.db"
    copy = workdir / "data" / "ballast-backup.db"
    server = server_on(workdir, f"sqlite:///{database}")
    servers.append(server)
    server.start(timeout=90)
    open_incident(server, "web_search")

    # Both documented ways, while the server runs (the second overwrites the first's copy).
    run_documented("sqlite-backup-python", workdir)
    assert count_rows(copy, "incidents") == 1
    output = run_documented("sqlite-backup", workdir)
    assert output.strip() == "ok"  # PRAGMA integrity_check
    assert count_rows(copy, "incidents") == 1

    open_incident(server, "order_lookup")  # after the backup: the restore must drop it
    server.stop()
    assert count_rows(database, "incidents") == 2

    run_documented("sqlite-restore", workdir)
    assert not (workdir / "data" / "ballast.db-wal").exists()
    restarted = server_on(workdir, f"sqlite:///{database}")
    servers.append(restarted)
    restarted.start(timeout=90)
    assert incident_tools(restarted) == {"web_search"}


@pytest.mark.postgres
def test_pg_dump_and_restore(workdir: Path, servers: list[BallastServer]) -> None:
    need_binary("pg_dump")
    need_binary("pg_restore")
    with fresh_database_url("postgres", workdir, "ballast_backup") as url:
        env = {"BALLAST_DATABASE_URL": url}
        server = server_on(workdir, url)
        servers.append(server)
        server.start(timeout=90)
        open_incident(server, "web_search")

        run_documented("pg-dump", workdir, env)  # while the server runs
        dump = workdir / "ballast.dump"
        listing = subprocess.run(
            ["pg_restore", "--list", str(dump)],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout
        assert re.search(r"TABLE DATA \S+ incidents ", listing)
        assert re.search(r"TABLE DATA \S+ alembic_version ", listing)

        open_incident(server, "order_lookup")
        server.stop()

        run_documented("pg-restore", workdir, env)  # over the live database: --clean
        restarted = server_on(workdir, url)
        servers.append(restarted)
        restarted.start(timeout=90)
        assert incident_tools(restarted) == {"web_search"}
        restarted.stop()
