"""PostgreSQL: check that a pooled connection is alive only when it sat idle for a while.

SQLAlchemy's ``pool_pre_ping`` checks at every checkout, and its asyncpg dialect pings a
connection that is not in autocommit with BEGIN, ``;`` and ROLLBACK: three round trips ahead of
every transaction and read session, about a tenth of the round trips on the path from an alert
to its mitigation (issue 16). A connection that answered a moment ago is what such a ping
would find, so here the pool hands out the connection returned last (LIFO: the ones in use
stay warm, the spare ones age at the bottom) and pings, with the dialect's own ping, only one
that sat in the pool longer than :data:`IDLE_PING_SECONDS`; a ping that fails makes the pool
drop that connection and take another (SQLAlchemy's ``DisconnectionError`` protocol), as the
pre-ping did.

A connection the server closed (a restart, an administrator's terminate, a failover) is
replaced at checkout whatever its age, without a round trip: the server's goodbye closed the
socket, and asyncpg saw it while the connection sat in the pool. What the skip leaves: a
connection that died silently within that second (the network dropped it, no goodbye) fails
its first statement instead of at checkout; SQLAlchemy then marks every connection of the pool
opened before the failure as invalid, and the caller sees the transient error that a
connection lost in the middle of its transaction gives (tests/store/test_pool_liveness.py).
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.pool import Pool

IDLE_PING_SECONDS = 1.0
_RETURNED_AT = "ballast.returned_at"  # ConnectionPoolEntry.info: when it came back (monotonic)


def _now() -> float:
    return time.monotonic()


def install(pool: Pool, idle_ping_seconds: float = IDLE_PING_SECONDS) -> None:
    """Ping ``pool``'s connections at checkout when idle longer than ``idle_ping_seconds``."""

    def connected(_dbapi_connection: Any, record: Any) -> None:
        record.info[_RETURNED_AT] = _now()  # new: as alive as it gets

    def returned(_dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            record.info[_RETURNED_AT] = _now()

    def checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        if _closed(dbapi_connection):
            raise DisconnectionError("the server closed a pooled connection")
        returned_at = record.info.get(_RETURNED_AT)
        if returned_at is not None and _now() - returned_at < idle_ping_seconds:
            return
        try:
            dbapi_connection.ping()
        except Exception as err:
            raise DisconnectionError(f"a pooled connection failed its ping: {err}") from err

    event.listen(pool, "connect", connected)
    event.listen(pool, "checkin", returned)
    event.listen(pool, "checkout", checked_out)


def _closed(dbapi_connection: Any) -> bool:
    """asyncpg's own view, no round trip: the server's goodbye (a terminate, a shutdown) closed
    the socket, which the event loop saw while the connection sat in the pool."""
    is_closed = getattr(getattr(dbapi_connection, "driver_connection", None), "is_closed", None)
    return bool(is_closed()) if callable(is_closed) else False
