"""What ``ballast serve`` says at start, and what it no longer says every second."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from bot.cli.banner import describe_database
from tests.e2e.processes import wait_until
from tests.principals import ROSTER

pytestmark = pytest.mark.slow


def records(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_one_banner_then_quiet(make_server: Any, tmp_path: Path, server_database_url: str) -> None:
    server = make_server(BALLAST_API_TOKEN="t")
    server.start(timeout=60)
    wait_until(lambda: "ready" in server.logs(), 10, "the ready line")
    time.sleep(3)  # three timer polls: each used to log two APScheduler INFO lines
    logs = records(server.logs())

    [banner] = [r for r in logs if r["msg"].split("\n")[0].endswith(" starting")]
    lines = banner["msg"].splitlines()
    facts = {line.split()[0]: line.split(None, 1)[1] for line in lines[1:]}
    assert facts["listen"].startswith(f"http://127.0.0.1:{server.port} (this machine only;")
    assert facts["database"] == describe_database(
        server_database_url.replace("postgresql://", "postgresql+asyncpg://")
    )
    assert facts["runbooks"] == f"3 from {tmp_path / 'runbooks'}"
    assert facts["slack"].startswith("console: no SLACK_BOT_TOKEN")
    roster = len(ROSTER)
    assert facts["API"] == f"{roster} named token(s), BALLAST_API_TOKEN (service 'api')"
    # Closed by default: only health answers anyone.
    assert facts["unauthenticated"] == "/healthz, /readyz"
    assert facts["webhooks"] == "a principal with the automation role"
    assert facts["OFREP/metrics"] == "a principal with the reader role"
    assert facts["postmortems"] == str(tmp_path / "postmortems")
    assert facts["config"].endswith("roster.yaml")
    assert facts["traces"] == "off (OTEL_EXPORTER_OTLP_ENDPOINT unset)"

    assert [r["msg"] for r in logs if r["logger"].startswith("apscheduler")] == []
    assert all("color_message" not in r for r in logs)
    assert "\x1b[" not in server.logs()


def test_database_is_described_without_a_password() -> None:
    shown = describe_database("postgresql+asyncpg://ballast:hunter2@db.internal:6432/prod")
    assert shown == "PostgreSQL db.internal:6432/prod as ballast"
    assert describe_database("sqlite+aiosqlite:///./data/b.db") == (
        f"SQLite {Path('data/b.db').resolve()}"
    )
