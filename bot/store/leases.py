"""Leases: which one process of several does a job that must have one doer.

An :class:`AdvisoryLease` is a PostgreSQL session advisory lock, held on a connection of its
own in autocommit mode (no transaction stays open). If the holder dies its connection closes,
PostgreSQL drops the lock, and another replica takes it at its next :meth:`held`. With SQLite
there is one process, which always holds the lease.

The Slack delivery's sender lease is one (see :mod:`bot.slack.budgets` for why one process
spends Slack's budgets).
"""

from __future__ import annotations

import logging

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.store.database import Database

log = logging.getLogger(__name__)


class AdvisoryLease:
    """Whether this process holds the lease ``lock_id`` (per schema: the lock is
    ``(lock_id, hashtext(current_schema()))``, so deployments sharing one PostgreSQL database in
    different schemas do not share a holder).

    :meth:`held` takes the lock when it is free and, while this process holds it, checks that
    its connection is still alive. ``name`` and ``role`` make the log lines
    ("lost <name>", "this process now <role>").
    """

    def __init__(self, db: Database, lock_id: int, *, name: str, role: str) -> None:
        self._db = db
        self._lock_id = lock_id
        self._name = name
        self._role = role
        self._conn: AsyncConnection | None = None

    async def held(self) -> bool:
        if self._db.is_sqlite:
            return True
        if self._conn is not None:
            try:
                await self._conn.execute(text("SELECT 1"))
            except Exception:
                log.warning("lost %s (its database connection failed)", self._name)
                await self._drop()
                return False
            return True
        conn = await self._db.engine.connect()
        try:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            got = await conn.scalar(
                text("SELECT pg_try_advisory_lock(:lock, hashtext(current_schema()))"),
                {"lock": self._lock_id},
            )
        except BaseException:
            await conn.invalidate()
            await conn.close()
            raise
        if not got:
            await conn.close()
            return False
        self._conn = conn
        log.info("this process now %s (holds %s)", self._role, self._name)
        return True

    async def release(self) -> None:
        """Let another replica hold it: unlock, or drop the connection (which also unlocks)."""
        if self._conn is None:
            return
        try:
            await self._conn.execute(
                text("SELECT pg_advisory_unlock(:lock, hashtext(current_schema()))"),
                {"lock": self._lock_id},
            )
            await self._conn.close()
        except Exception:
            await self._drop()
        self._conn = None

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.invalidate()
            await conn.close()
