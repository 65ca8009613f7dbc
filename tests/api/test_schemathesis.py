"""The OpenAPI document against a live ``ballast serve``, with schemathesis (issue 14, item 6).

Every operation of ``/openapi.json`` is exercised by schemathesis on SQLite and PostgreSQL, as a
client would (real HTTP, the bearer token every endpoint family accepts), and must answer
without a 5xx, with a status the document lists for it, a body its schema admits and the
content type it names. Bounded: a few examples per operation, about a minute per database.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import fresh_database_url
from tests.e2e.processes import BallastServer

TOKEN = "schemathesis-token-1"
RUNBOOKS = Path(__file__).with_name("runbooks")
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "response_schema_conformance",
    "content_type_conformance",
)


@pytest.fixture
def server(database_kind: str, tmp_path: Path) -> Iterator[BallastServer]:
    with fresh_database_url(database_kind, tmp_path, "schemathesis") as url:
        (tmp_path / "data").mkdir(exist_ok=True)
        env = {
            "BALLAST_DATABASE_URL": url,
            "BALLAST_RUNBOOKS": str(RUNBOOKS),
            "BALLAST_API_TOKEN": TOKEN,
            "BALLAST_WEBHOOK_TOKEN": TOKEN,
            "BALLAST_OFREP_TOKEN": TOKEN,
        }
        server = BallastServer(tmp_path, env, tmp_path / "serve.log")
        server.start(timeout=60)
        try:
            yield server
        finally:
            server.stop()


def test_every_operation_keeps_to_the_document(server: BallastServer, tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,  # the test environment's schemathesis, whatever PATH holds
            "-m",
            "schemathesis.cli",
            "--no-color",
            "run",
            f"{server.url}/openapi.json",
            "--header",
            f"Authorization: Bearer {TOKEN}",
            "--checks",
            ",".join(CHECKS),
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            "15",
            "--seed",
            "14",
            "--generation-deterministic",
            "--request-timeout",
            "10",
            "--workers",
            "1",
        ],
        cwd=tmp_path,  # its cache (.schemathesis/) stays out of the checkout
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    report = result.stdout[-6000:] + result.stderr[-2000:]
    assert result.returncode == 0, f"{report}\n--- server log ---\n{server.logs()[-3000:]}"
