"""The database goes away under a running server: webhooks get 503 (retry), never a 4xx or 500,
and once it is back the retried notification is stored.

Alertmanager drops a notification answered 4xx and retries 5xx; a 500 would be retried too, but
says "Ballast is broken" where the truth is "come back later". PostgreSQL only: cutting a
database off from a live server is something an operator (or a failover) really does to it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import FIXTURES, _admin_sql, fresh_database_url
from tests.e2e.processes import BallastServer, wait_until
from tests.principals import READ, roster_yaml

WEBHOOK = "webhook-secret-db-away"

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

BODY = (FIXTURES / "alertmanager-captured" / "firing-group-2-alerts.json").read_bytes()


@pytest.fixture
def database(tmp_path: Path) -> Iterator[tuple[str, str]]:
    with fresh_database_url("postgres", tmp_path, "ballast_away") as url:
        yield url, url.rsplit("/", 1)[1]


def cut_off(name: str) -> None:
    """No new connections to the database, and every open one closed (as a failover does)."""
    _admin_sql(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
    _admin_sql(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        f"WHERE datname = '{name}' AND pid <> pg_backend_pid()"
    )


def post(server: BallastServer) -> httpx.Response:
    return httpx.post(
        f"{server.url}/webhooks/alertmanager",
        content=BODY,
        headers={"content-type": "application/json", "authorization": f"Bearer {WEBHOOK}"},
        timeout=30,
    )


def test_webhooks_get_503_while_the_database_is_away_and_are_stored_after(
    tmp_path: Path, database: tuple[str, str]
) -> None:
    url, name = database
    runbooks = tmp_path / "runbooks"
    runbooks.mkdir()
    roster = tmp_path / "roster.yaml"
    roster.write_text(roster_yaml())
    server = BallastServer(
        tmp_path,
        {
            "BALLAST_DATABASE_URL": url,
            "BALLAST_RUNBOOKS": str(runbooks),
            "BALLAST_LOG_FORMAT": "json",
            "BALLAST_WEBHOOK_TOKEN": WEBHOOK,
            "BALLAST_CONFIG": str(roster),  # READ is the roster's reader token
        },
        tmp_path / "ballast.log",
    )
    server.start()
    try:
        cut_off(name)
        answers: list[httpx.Response] = [post(server) for _ in range(3)]
        assert [a.status_code for a in answers] == [503, 503, 503], server.logs()
        for answer in answers:
            assert answer.headers["retry-after"].isdigit()
            assert "retry later" in answer.json()["detail"]
        assert server.process is not None
        assert server.process.poll() is None, "the server died with its database"

        _admin_sql(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        stored: dict[str, Any] = {}

        def accepted() -> bool:
            answer = post(server)  # Alertmanager's retry of the same notification
            if answer.status_code == 200:
                stored.update(answer.json())
                return True
            assert answer.status_code == 503, answer.text
            return False

        wait_until(accepted, 30, "a webhook to be accepted once the database is back")
        assert stored == {"received": 2, "stored": 2, "duplicates": 0, "truncated_alerts": 0}
        wait_until(
            lambda: httpx.get(f"{server.url}/api/v1/incidents", headers=READ, timeout=10).json()[
                "incidents"
            ],
            30,
            "the stored alerts to become an incident",
        )
        lines = [json.loads(line) for line in server.logs().splitlines() if line.startswith("{")]
        assert any("answering 503" in line.get("msg", "") for line in lines)
    finally:
        _admin_sql(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        server.stop()
