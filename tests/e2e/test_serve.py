"""``ballast serve`` as a process: SIGHUP reload, JSON logs, refusing a bad catalog at start."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.processes import wait_until
from tests.principals import READ

pytestmark = pytest.mark.slow


def runbook_ids(url: str) -> set[str]:
    body = httpx.get(f"{url}/api/v1/runbooks", headers=READ, timeout=2).json()
    return {r["id"] for r in body["runbooks"]}


def test_sighup_reloads_and_keeps_last_good(make_server: Any, tmp_path: Path) -> None:
    server = make_server()
    server.start()
    assert server.process is not None
    folder = tmp_path / "runbooks"
    before = runbook_ids(server.url)

    (folder / "broken.yaml").write_text("id: broken\nsevrity: sev1\n")
    server.process.send_signal(signal.SIGHUP)
    wait_until(lambda: "runbook reload refused" in server.logs(), 10, "the refusal to be logged")
    assert runbook_ids(server.url) == before

    (folder / "broken.yaml").unlink()
    (folder / "grafana-memory.yaml").unlink()
    server.process.send_signal(signal.SIGHUP)
    wait_until(lambda: runbook_ids(server.url) == before - {"platform/high-memory"}, 10, "reload")

    lines = [line for line in server.logs().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # BALLAST_LOG_FORMAT=json: every line
    assert any(r["level"] == "error" and "broken.yaml:2:1" in r["msg"] for r in records)
    assert all({"ts", "level", "logger", "msg"} <= set(r) for r in records)


def test_serve_refuses_to_start_on_invalid_catalog(tmp_path: Path) -> None:
    folder = tmp_path / "runbooks"
    folder.mkdir()
    (folder / "bad.yaml").write_text("id: bad\n")
    result = subprocess.run(
        [sys.executable, "-m", "bot", "serve", "--port", "1"],
        env={
            "BALLAST_RUNBOOKS": str(folder),
            "BALLAST_DATABASE_URL": f"sqlite:///{tmp_path}/x.db",
            "PATH": "/usr/bin:/bin",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "not starting: the runbook catalog is invalid" in result.stderr
    assert "bad.yaml:1:1" in result.stderr
