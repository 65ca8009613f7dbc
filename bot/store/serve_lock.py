"""SQLite is one process: the server holds an exclusive lock beside the database file.

SQLite has one writer per file and Ballast's write gate, leases and recovery assume one
process owns the file. A second ``ballast serve`` on the same file would run a second engine,
a second timer service and a second recovery against it, so it refuses to start instead. The
lock is ``flock`` on ``<db>.serve.lock``: the kernel drops it when the holder exits, however it
exits (SIGKILL included), so a stale lock file never blocks a restart.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from bot.errors import ConfigError


class ServeLock:
    """The held lock; :meth:`release` (or process exit) frees it."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def lock_path(database: Path) -> Path:
    return database.with_name(database.name + ".serve.lock")


def hold_sqlite(database: str) -> ServeLock | None:
    """Take the serve lock of SQLite file ``database`` (None for ``:memory:``); raises
    :class:`ConfigError` when another process holds it."""
    if not database or database == ":memory:":
        return None
    path = lock_path(Path(database).expanduser().resolve())
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise ConfigError(
            f"another `ballast serve` already uses the SQLite database {database} "
            f"(it holds {path}). SQLite is for one process; to run several replicas, "
            "point every replica at one PostgreSQL database (BALLAST_DATABASE_URL="
            "postgresql://...)."
        ) from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return ServeLock(path, fd)
