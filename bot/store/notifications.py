"""Cross-replica wake-ups: PostgreSQL ``LISTEN/NOTIFY``, with polling kept only as a fallback.

Each replica keeps state derived from shared tables (the OFREP copy of the control values) or
works a shared queue (the Slack outbox). A write in the same process wakes its reader at once
through a plain callback; a write by another replica used to be seen only at the reader's next
poll (0.1 s for the control copy, 1 s for the outbox). Now the writer also calls :func:`notify`
inside its transaction, and PostgreSQL hands the notification to every listening session when,
and only if, that transaction commits: a listener is never told before the change is visible.

:class:`ChangeFeed` holds one connection per process that ``LISTEN``\\ s on every channel and
calls the channel's subscribers in the event loop. The payload names the writer's
``current_schema()`` (deployments and tests sharing one database in different schemas ignore
each other's notifications) and its :attr:`~bot.store.database.Database.origin` (a replica
skips its own: it applied them in-process already, and a second re-read would only cost).

Notifications are lost while the connection is down, so the feed says whether it is
:attr:`~ChangeFeed.listening` (subscribers poll at their short period while it is not), calls
every subscriber once each time it (re)connects (whatever changed in between is re-read), and
checks the connection with ``SELECT 1`` every ``check_every`` seconds, since a peer that
vanished without closing its socket is otherwise only noticed by the kernel much later.
SQLite has no notifications (and one process writes it, apart from the CLI): there the feed
never listens and every subscriber keeps its short poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import defaultdict
from collections.abc import Callable
from enum import StrEnum
from typing import Any

from sqlalchemy import Text, bindparam, cast, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from bot.store.database import DATABASE_KEY, Database

log = logging.getLogger(__name__)

CHECK_EVERY_SECONDS = 10.0
RECONNECT_AFTER_SECONDS = 1.0
_CHECK_TIMEOUT_SECONDS = 5.0


class Channel(StrEnum):
    """A ``NOTIFY`` channel: what changed."""

    CONTROLS = "ballast_controls"  # a control value (bot.controls.store)
    SLACK_OUTBOX = "ballast_slack_outbox"  # a Slack call was queued (bot.slack.outbox)
    RUNBOOKS_PUSHED = "ballast_runbooks_pushed"  # a push webhook came (bot.api.git_webhook)


async def notify(session: AsyncSession, channel: Channel) -> None:
    """Tell the other replicas, once ``session``'s transaction commits (PostgreSQL only).

    Several notifications of one channel and payload in one transaction are delivered once.
    A statement the writer runs anyway can carry it instead (:data:`NOTIFYING`), one round
    trip fewer.
    """
    params = notify_params(session, channel)
    if params is not None:
        await session.execute(_NOTIFY, params)


# ``pg_notify(channel, payload)`` as a column: ``select(NOTIFYING)``, or added to the
# RETURNING of a statement of the same transaction; its parameters from notify_params.
NOTIFYING = func.pg_notify(
    bindparam("notify_channel", type_=Text),
    cast(
        func.json_build_object(
            "schema", func.current_schema(), "origin", cast(bindparam("notify_origin"), Text)
        ),
        Text,
    ),
).label("notified")
_NOTIFY = select(NOTIFYING)


def notify_params(session: AsyncSession, channel: Channel) -> dict[str, str] | None:
    """The parameters of :data:`NOTIFYING` for ``session``; None on SQLite (no notifications)."""
    if session.get_bind().dialect.name != "postgresql":
        return None
    database = session.info.get(DATABASE_KEY)
    origin = database.origin if isinstance(database, Database) else ""
    return {"notify_channel": channel.value, "notify_origin": origin}


class ChangeFeed:
    """This process's ``LISTEN`` connection; :meth:`run` it in the background."""

    def __init__(
        self,
        db: Database,
        *,
        check_every: float = CHECK_EVERY_SECONDS,
        reconnect_after: float = RECONNECT_AFTER_SECONDS,
    ) -> None:
        self._db = db
        self.check_every = check_every
        self.reconnect_after = reconnect_after
        self._subscribers: defaultdict[Channel, list[Callable[[], None]]] = defaultdict(list)
        self._schema: str | None = None
        self._listening = False
        self._lost = asyncio.Event()
        self._stopping = asyncio.Event()
        self._conn: AsyncConnection | None = None
        self.connections = 0  # how many times it (re)connected: for tests and logs
        self.backend_pid: int | None = None  # the listening session's pid in PostgreSQL

    @property
    def enabled(self) -> bool:
        """Whether this database has notifications at all (PostgreSQL)."""
        return not self._db.is_sqlite

    @property
    def listening(self) -> bool:
        """True while notifications arrive: subscribers may poll at their long period."""
        return self._listening

    def subscribe(self, channel: Channel, callback: Callable[[], None]) -> None:
        """Call ``callback`` (in the event loop, must not block) after another process's
        commit on ``channel``, and each time the feed (re)connects."""
        self._subscribers[channel].append(callback)

    async def run(self) -> None:
        """Listen until :meth:`stop`; reconnect after ``reconnect_after`` when the connection
        is lost. Returns at once on SQLite."""
        if not self.enabled:
            return
        while not self._stopping.is_set():
            try:
                await self._listen()
            except Exception as err:  # logged, then retried: the fallback poll covers the gap
                log.warning(
                    "not listening for changes by other replicas (polling meanwhile): %s", err
                )
            finally:
                self._listening = False
                await self._drop()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.reconnect_after)

    async def stop(self, worker: asyncio.Task[None]) -> None:
        """Stop listening and close the connection."""
        self._stopping.set()
        self._lost.set()
        with contextlib.suppress(asyncio.CancelledError):
            await worker

    async def _listen(self) -> None:
        conn = self._conn = await self._db.engine.connect()
        raw = await conn.get_raw_connection()
        pg: Any = raw.driver_connection  # asyncpg.Connection
        self._schema = await pg.fetchval("SELECT current_schema()")
        self.backend_pid = pg.get_server_pid()
        self._lost.clear()
        pg.add_termination_listener(self._on_terminated)
        for channel in Channel:
            await pg.add_listener(channel.value, self._on_notification)
        self._listening = True
        self.connections += 1
        if self.connections > 1:
            log.info("listening for changes by other replicas again")
        self._call_all()  # what changed while nobody listened is re-read
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._lost.wait(), self.check_every)
            if self._lost.is_set():
                if not self._stopping.is_set():
                    raise ConnectionError("the listening connection was closed")
                return
            await asyncio.wait_for(pg.fetchval("SELECT 1"), _CHECK_TIMEOUT_SECONDS)

    def _on_terminated(self, _connection: Any) -> None:
        self._listening = False
        self._lost.set()

    def _on_notification(self, _connection: Any, _pid: int, channel: str, payload: str) -> None:
        try:
            sender = json.loads(payload)
            schema, origin = sender["schema"], sender["origin"]
        except (ValueError, TypeError, KeyError):
            log.warning("ignored a %s notification with an unknown payload", channel)
            return
        if schema != self._schema or origin == self._db.origin:
            return  # another deployment's schema in the same database, or this replica's own
        for callback in self._subscribers.get(Channel(channel), ()):
            _call(callback)

    def _call_all(self) -> None:
        for callbacks in self._subscribers.values():
            for callback in callbacks:
                _call(callback)

    async def _drop(self) -> None:
        """Close the connection for good: its listeners must not go back into the pool."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        with contextlib.suppress(Exception):
            await conn.invalidate()
        with contextlib.suppress(Exception):
            await conn.close()


def _call(callback: Callable[[], None]) -> None:
    try:
        callback()
    except Exception:  # one subscriber's bug must not silence the others
        log.exception("change subscriber %r failed", callback)
