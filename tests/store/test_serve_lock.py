"""One ``ballast serve`` per SQLite file: the lock is taken, refused to a second holder, and
freed however its holder ends (a SIGKILL included), so a stale lock file never blocks a
restart. ``tests/e2e`` starts real servers on one file; here the lock alone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bot.errors import ConfigError
from bot.store.serve_lock import hold_sqlite, lock_path

REPO = Path(__file__).resolve().parents[2]


def test_an_in_memory_database_takes_no_lock() -> None:
    assert hold_sqlite(":memory:") is None
    assert hold_sqlite("") is None


def test_the_lock_file_beside_the_database_names_its_holder(tmp_path: Path) -> None:
    database = tmp_path / "data" / "ballast.db"  # its folder made for it
    held = hold_sqlite(str(database))
    assert held is not None
    try:
        assert held.path == lock_path(database) == tmp_path / "data" / "ballast.db.serve.lock"
        assert held.path.read_text() == f"{os.getpid()}\n"
    finally:
        held.release()


def test_a_second_holder_is_refused_until_the_first_lets_go(tmp_path: Path) -> None:
    database = tmp_path / "ballast.db"
    first = hold_sqlite(str(database))
    assert first is not None
    with pytest.raises(ConfigError) as refused:
        hold_sqlite(str(database))
    message = str(refused.value)
    assert str(database) in message
    assert str(lock_path(database)) in message
    assert "PostgreSQL" in message  # where several replicas go instead
    # The same file by another spelling is the same lock.
    with pytest.raises(ConfigError):
        hold_sqlite(str(tmp_path / "." / "ballast.db"))
    first.release()
    first.release()  # twice is harmless
    again = hold_sqlite(str(database))
    assert again is not None
    again.release()


def test_a_killed_holder_leaves_a_lock_file_that_blocks_nothing(tmp_path: Path) -> None:
    database = tmp_path / "ballast.db"
    with subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from bot.store.serve_lock import hold_sqlite\n"
            "held = hold_sqlite(sys.argv[1])\n"
            "print('held', flush=True)\n"
            "time.sleep(120)\n",
            str(database),
        ],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        text=True,
    ) as holder:
        try:
            assert holder.stdout is not None
            assert holder.stdout.readline().strip() == "held"
            with pytest.raises(ConfigError):
                hold_sqlite(str(database))
            holder.send_signal(signal.SIGKILL)
            holder.wait(timeout=30)
        finally:
            if holder.poll() is None:
                holder.kill()
                holder.wait()
    assert lock_path(database).exists()  # the file stays; the kernel dropped the lock
    held = hold_sqlite(str(database))
    assert held is not None
    assert held.path.read_text() == f"{os.getpid()}\n"
    held.release()
