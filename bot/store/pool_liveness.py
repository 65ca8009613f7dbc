"""PostgreSQL: a pooled connection is checked for life on checkout without a round trip while it
was in use a moment ago, with SQLAlchemy's ping once it sat idle.

SQLAlchemy's ``pool_pre_ping`` pings every connection it hands out, and on asyncpg a ping outside
a transaction is three round trips (BEGIN, an empty query, ROLLBACK: SQLAlchemy wraps it in a
transaction for pgbouncer's transaction mode). Every pooled transaction paid them on top of its
own: each engine batch (a lone alert's too), each executor step, each worker's poll (issue 16;
the webhooks' writer keeps a connection of its own). What the ping finds is nearly always a
connection the server closed: a restart, ``pg_terminate_backend``, an idle timeout. The server
then says so on the socket (a FATAL message, then end of file), and asyncpg marks the
connection closed the moment the event loop reads that, with no round trip
(``Connection.is_closed``). So a checkout here:

* replaces a connection asyncpg knows is closed (only that one: after a restart each of the
  others is found the same way as it comes);
* pings a connection whose socket has something to read: an idle connection is sent nothing,
  so that is the server's last words (or its end of file) which the event loop has not read
  yet; asyncpg learns of them only when it does, and a checkout in between (a replica's
  start-up steps, one after another) took the dead connection without a ping. A ``poll`` of
  the socket with no timeout, one system call;
* pings, as ``pool_pre_ping`` would, a connection idle longer than
  :data:`PING_AFTER_IDLE_SECONDS`: only the ping tells of a connection that died without a word
  (a dropped route, a firewall's idle timeout), and those come with idleness. A failed ping
  replaces every connection the pool handed out before, as a failed pre-ping does;
* hands out a connection used within that time as it is.

What a connection that died without a word in that second costs is its transaction's first
statement failing as unavailable (:mod:`bot.store.transient`): the callers' own handling of a
lost connection (a webhook answers 503, the engine and workers try again), as for a connection
lost in the middle of a transaction, which no ping prevents either.

SQLAlchemy has no such option: its documented way to decide on checkout is a ``checkout`` event
that raises ``DisconnectionError`` (``InvalidatePoolError`` as its own pre-ping does), used
here.
"""

from __future__ import annotations

import select
import time
from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import DisconnectionError, InvalidatePoolError
from sqlalchemy.ext.asyncio import AsyncEngine

# A connection back from use this recently is handed out without a ping. The engine's and the
# workers' polls (about once a second) keep a busy server's few connections under it (the pool
# hands out the most recently used first), so a lone alert's path pays no ping.
PING_AFTER_IDLE_SECONDS = 1.0
# ConnectionRecord.info key: when the connection was made or last went back to the pool.
_LAST_USED = "ballast.last_used"


def closed_by_server(dbapi_connection: Any) -> bool:
    """What asyncpg already knows, without a round trip: the server closed the connection."""
    closed: bool = dbapi_connection.driver_connection.is_closed()
    return closed


def has_unread(dbapi_connection: Any) -> bool:
    """Whether the connection's socket has bytes (or its end) waiting to be read. asyncpg keeps
    its transport in ``_transport`` (no public accessor); without it, or its socket, this
    answers True and the connection is pinged."""
    transport = getattr(dbapi_connection.driver_connection, "_transport", None)
    sock = None if transport is None else transport.get_extra_info("socket")
    descriptor = -1 if sock is None else sock.fileno()
    if descriptor < 0:  # closed already
        return True
    poller = select.poll()
    poller.register(descriptor, select.POLLIN | select.POLLPRI)
    return bool(poller.poll(0))


def watch_liveness(engine: AsyncEngine) -> None:
    """Check ``engine``'s pooled PostgreSQL connections on checkout as described above (use
    with ``pool_pre_ping`` off)."""
    dialect = engine.sync_engine.dialect
    pool = engine.sync_engine.pool

    def used(_dbapi_connection: Any, record: Any, *_: Any) -> None:
        record.info[_LAST_USED] = time.monotonic()

    def checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        if closed_by_server(dbapi_connection):
            raise DisconnectionError("the server closed the connection")
        last = record.info.get(_LAST_USED)
        recent = last is not None and time.monotonic() - last <= PING_AFTER_IDLE_SECONDS
        if recent and not has_unread(dbapi_connection):
            return
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as err:
            if dialect.is_disconnect(err, dbapi_connection, None):
                raise InvalidatePoolError(f"ping failed: {err}") from err
            raise

    event.listen(pool, "connect", used)
    event.listen(pool, "checkin", used)
    event.listen(pool, "checkout", checkout)


__all__ = ["PING_AFTER_IDLE_SECONDS", "closed_by_server", "has_unread", "watch_liveness"]
