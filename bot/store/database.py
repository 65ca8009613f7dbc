"""The database connection: engine, sessions, migrations, and SQLite's housekeeping.

SQLite runs in WAL mode with ``wal_autocheckpoint`` off on every connection; a background task
checkpoints instead, so no webhook request pays for a checkpoint (it dominated the p99).
PostgreSQL runs migrations under an advisory lock so replicas starting together do not race.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")
# Any constant will do; it only has to be the same in every replica.
MIGRATION_LOCK_ID = 0x42A11A57


class Database:
    """Owns the SQLAlchemy engine. Built once by ``bot.app``; closed on shutdown."""

    def __init__(
        self, url: str, *, echo: bool = False, connect_args: dict[str, Any] | None = None
    ) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        options: dict[str, Any] = {"echo": echo}
        if self.is_sqlite:
            _ensure_sqlite_folder(url)
            options["connect_args"] = {"timeout": 30, **(connect_args or {})}
        else:
            options.update(pool_size=10, max_overflow=10, pool_pre_ping=True)
            options["connect_args"] = connect_args or {}
        self.engine: AsyncEngine = create_async_engine(url, **options)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._checkpointer: asyncio.Task[None] | None = None

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session in one transaction: committed on success, rolled back on any error."""
        async with self.sessions() as session, session.begin():
            yield session

    async def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision."""
        async with self.engine.begin() as conn:
            if not self.is_sqlite:
                await conn.execute(
                    text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID}
                )
            await conn.run_sync(_upgrade)

    def start_housekeeping(self, checkpoint_every: float = 1.0) -> None:
        if self.is_sqlite and self._checkpointer is None:
            self._checkpointer = asyncio.create_task(
                self._checkpoint_loop(checkpoint_every), name="sqlite-checkpoint"
            )

    async def checkpoint(self) -> None:
        """Move WAL pages into the main file without blocking readers or writers."""
        async with self.engine.connect() as conn:
            await conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")

    async def _checkpoint_loop(self, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            try:
                await self.checkpoint()
            except Exception:
                log.exception("background WAL checkpoint failed; will retry")

    async def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checkpointer
            self._checkpointer = None
        await self.engine.dispose()


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def _upgrade(connection: Connection) -> None:
    command.upgrade(alembic_config(connection), "head")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # FULL: a committed (acknowledged) alert survives power loss, not only a crash.
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA wal_autocheckpoint=0")
    cursor.close()


def _ensure_sqlite_folder(url: str) -> None:
    path = url.split(":///", 1)[-1].split("?", 1)[0]
    if path and path != ":memory:":
        Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
