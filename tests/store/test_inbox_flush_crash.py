"""On PostgreSQL the webhook writer's INSERT commits without waiting for the WAL flush, and the
answer waits for a flush (bot/store/inbox_writer.py). So what was answered survives a crash of
the database server that came right after the answer.

A private PostgreSQL cluster (the shared test server must not be crashed) whose WAL writer,
background writer and checkpointer are stopped (SIGSTOP), so that nothing but the writer's own
flush moves the WAL from shared memory to the file; then every one of its processes is
SIGKILLed and it is started again (crash recovery). The control: the same with a "flush" that
commits no transaction of its own (no commit record, so no flush) loses the answered rows,
which shows that the first case survived by the writer's flush and nothing else.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.intake.alert import Alert, AlertBatch, AlertSource, AlertStatus
from bot.store import inbox_writer
from bot.store.database import Database
from bot.store.inbox_writer import InboxWriter
from bot.store.tables import InboxAlert
from tests.conftest import need, need_binary
from tests.e2e.processes import free_port

pytestmark = pytest.mark.slow

T0 = datetime(2026, 12, 8, 3, 0, tzinfo=UTC)


class PrivatePostgres:
    """A throwaway cluster on loopback, run as the ``postgres`` user when we are root (the
    server refuses to run as root)."""

    def __init__(self) -> None:
        bindir = Path(
            subprocess.run(
                [need_binary("pg_config"), "--bindir"], capture_output=True, text=True, check=True
            ).stdout.strip()
        )
        need((bindir / "initdb").exists(), "PostgreSQL's initdb")
        self.bindir = bindir
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            self.as_user = [need_binary("runuser"), "-u", "postgres", "--"]
        self.home = Path(tempfile.mkdtemp(prefix="ballast-pg-"))
        self.data = self.home / "data"
        self.port = free_port()
        if self.as_user:
            shutil.chown(self.home, "postgres")
        self._run("initdb", "-D", str(self.data), "--auth=trust", "-U", "postgres", "-E", "UTF8")

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run(
            [*self.as_user, str(self.bindir / tool), *args],
            check=True,
            capture_output=True,
            cwd=self.home,
            timeout=120,
        )

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.home} -c autovacuum=off "
            "-c fsync=on -c synchronous_commit=on -c wal_writer_delay=10s"
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.home / "log"), "-w", "-o",
                  options, "start")  # fmt: skip

    def processes(self) -> dict[int, str]:
        """pid → what it is (its command line), for the postmaster and its children."""
        postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        found = {postmaster: "postmaster"}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                status = (entry / "status").read_text()
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            ppid = next(
                int(line.split()[1]) for line in status.splitlines() if line.startswith("PPid:")
            )
            if ppid == postmaster:
                found[int(entry.name)] = cmdline
        return found

    def stop_background_writers(self) -> None:
        """Freeze what writes or flushes the WAL on its own (the backends do it only at their
        own commits)."""
        frozen = 0
        for pid, what in self.processes().items():
            if any(name in what for name in ("walwriter", "background writer", "checkpointer")):
                os.kill(pid, signal.SIGSTOP)
                frozen += 1
        assert frozen == 3, self.processes()

    def crash(self) -> None:
        """SIGKILL to the postmaster and every child: nothing is written on the way out. Its
        lock files go too (a killed postmaster may stay a zombie for a while, which the next
        one would take for a live one)."""
        for pid in self.processes():
            os.kill(pid, signal.SIGKILL)
        (self.data / "postmaster.pid").unlink(missing_ok=True)
        for lock in self.home.glob(".s.PGSQL.*"):
            lock.unlink(missing_ok=True)

    def destroy(self) -> None:
        try:
            for pid in self.processes():
                os.kill(pid, signal.SIGKILL)
        except (OSError, ValueError, IndexError):
            pass
        shutil.rmtree(self.home, ignore_errors=True)


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    cluster = PrivatePostgres()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()


def _alerts(webhook: int, count: int) -> AlertBatch:
    return AlertBatch(
        source=AlertSource.ALERTMANAGER,
        alerts=[
            Alert(
                fingerprint=f"crash-{webhook}-{n}",
                status=AlertStatus.FIRING,
                labels={"alertname": "ToolCallFailureRate", "n": str(n)},
                starts_at=T0,
                source=AlertSource.ALERTMANAGER,
            )
            for n in range(count)
        ],
    )


async def _answered_then_crashed(cluster: PrivatePostgres) -> int:
    """Store three webhooks' alerts (each answered), crash the server, start it again: how
    many alerts it still has."""
    db = Database(cluster.url)
    await db.migrate()
    await db.close()  # the migration's sessions: none of them commits again after this
    cluster.stop_background_writers()
    db = Database(cluster.url)
    try:
        writer = InboxWriter(db)
        for webhook in range(3):
            receipt = await writer.store(_alerts(webhook, 4), T0)
            assert (receipt.received, receipt.stored) == (4, 4)
    finally:
        cluster.crash()
        await db.close()
    cluster.start()
    db = Database(cluster.url)
    try:
        async with db.engine.connect() as conn:
            return int(
                (await conn.execute(select(func.count()).select_from(InboxAlert))).scalar_one()
            )
    finally:
        await db.close()


async def test_what_was_answered_survives_the_database_server_s_crash(
    private_postgres: PrivatePostgres,
) -> None:
    assert await _answered_then_crashed(private_postgres) == 12


async def test_control_without_the_flush_the_answered_alerts_are_lost(
    private_postgres: PrivatePostgres, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fault injected: a "flush" that is no transaction of its own flushes nothing. The
    crash then loses what was answered, so the test above can tell."""
    monkeypatch.setattr(inbox_writer, "_FLUSH", "SELECT set_config('synchronous_commit', $1, true)")
    assert await _answered_then_crashed(private_postgres) == 0
