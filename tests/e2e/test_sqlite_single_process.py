"""SQLite is one process: a second ``ballast serve`` on the same file refuses to start."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import API_RUNBOOKS
from tests.e2e.processes import BallastServer

pytestmark = pytest.mark.slow


def second_serve(tmp_path: Path, url: str, runbooks: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", "serve", "--port", "1"],
        env={
            "BALLAST_RUNBOOKS": str(runbooks),
            "BALLAST_DATABASE_URL": url,
            "PATH": "/usr/bin:/bin",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_second_serve_on_one_sqlite_file_refuses_until_the_first_dies(tmp_path: Path) -> None:
    runbooks = tmp_path / "runbooks"
    shutil.copytree(API_RUNBOOKS, runbooks)
    url = f"sqlite:///{tmp_path / 'data' / 'ballast.db'}"
    first = BallastServer(
        tmp_path,
        {"BALLAST_DATABASE_URL": url, "BALLAST_RUNBOOKS": str(runbooks)},
        tmp_path / "a.log",
    )
    first.start()
    try:
        refused = second_serve(tmp_path, url, runbooks)
        assert refused.returncode == 1
        assert "not starting: another `ballast serve` already uses the SQLite database" in (
            refused.stderr
        )
        assert "PostgreSQL" in refused.stderr
        # The same file under another spelling of its path is the same database.
        other_spelling = f"sqlite:///{tmp_path / 'data' / '..' / 'data' / 'ballast.db'}"
        assert second_serve(tmp_path, other_spelling, runbooks).returncode == 1
        # The first still serves.
        first_ready = first.process is not None and first.process.poll() is None
        assert first_ready
    finally:
        first.kill()  # SIGKILL: the kernel drops the lock, no stale file blocks a restart
    again = BallastServer(
        tmp_path,
        {"BALLAST_DATABASE_URL": url, "BALLAST_RUNBOOKS": str(runbooks)},
        tmp_path / "b.log",
    )
    again.start()
    again.stop()
