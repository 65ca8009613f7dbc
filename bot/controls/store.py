"""The built-in control store: control values in Ballast's own database.

``BuiltinControlStore`` is the default control-plane backend: what it holds is what AI
applications read over OFREP. Its changes go to the shared history (``bot.controls.history``)
in the same transaction, so ``to: previous`` and the audit trail see them like any other.

Writes. Every write begins by bumping the single ``control_revision`` row, before it reads
anything. On PostgreSQL that UPDATE takes a row lock which orders all control writes, so
revisions follow commit order and the ETag a replica derives from it is never ahead of the
values it reads. On SQLite it takes the database write lock up front (a transaction that reads
first and writes later can fail with SQLITE_BUSY_SNAPSHOT instead of waiting). Control writes
are rare; reads take no lock.

Reads for OFREP. Every evaluation in every AI application is one request (the Python provider
has no cache), so OFREP answers from :meth:`BuiltinControlStore.current`, an in-memory copy
of all values (the table is small), dropped at once by a write through this store. A change
made in this process is visible to the very next evaluation. On PostgreSQL a write also
notifies every replica (:mod:`bot.store.notifications`), whose copy is marked stale as the
notification arrives, so another replica's change is served by the next evaluation there too.
Polling the revision row stays as the fallback: every ``notified_staleness`` seconds while
notifications arrive (they can only be lost with the connection, which the feed notices), and
every ``max_staleness`` seconds while they do not (SQLite, where the CLI may write from another
process, or a PostgreSQL listener that is reconnecting). The database sees a few queries a
second at most, not one per evaluation, and while it is down the last values are still served
(see :meth:`~BuiltinControlStore.current`).
"""

from __future__ import annotations

import asyncio
import bisect
import builtins
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import Row, bindparam, delete, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from actions.backends.base import ControlBackend, FlagValue, WriteResult
from actions.control_values import check_audit, check_value, parse_key, same_value, value_type_of
from actions.errors import ActionError, FinalError, RetryableError
from bot.controls.failures import store_error
from bot.controls.history import (
    ControlChange,
    ControlHistoryLog,
    append_change,
    change_parameters,
    recorded_with,
)
from bot.store.database import Database, on_commit
from bot.store.notifications import NOTIFYING, ChangeFeed, Channel, notify, notify_params
from bot.store.riders import Rider
from bot.store.tables import ControlRevision, StoredControlValue, table_of
from bot.store.upsert import upsert

__all__ = [
    "BuiltinControlStore",
    "ControlChange",
    "ControlHistoryLog",
    "ControlSnapshot",
    "ControlValue",
    "SessionControlWrites",
]

Clock = Callable[[], datetime]

_REVISION_ROW = 1
DEFAULT_MAX_STALENESS = 0.1
DEFAULT_NOTIFIED_STALENESS = 5.0
RETRY_AFTER_FAILURE = 1.0

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ControlValue:
    """A value as the store holds it; ``version`` counts its changes, starting at 1."""

    key: str
    value: FlagValue
    value_type: str
    version: int
    updated_at: datetime
    updated_by: str


@dataclass(frozen=True, slots=True)
class ControlSnapshot:
    """Every value at one revision: what OFREP serves. ``values`` is ordered by key."""

    etag: str
    values: Mapping[str, ControlValue]
    checked_at: float  # time.monotonic() when the revision was last confirmed


class BuiltinControlStore(ControlBackend):
    """Control values in Ballast's database, served to AI applications over OFREP.

    Build one per process and share it (OFREP, the operator API and the executor's "builtin"
    backend), so a write here is seen by the next OFREP read without waiting.
    """

    name: ClassVar[str] = "builtin"

    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        max_staleness: float = DEFAULT_MAX_STALENESS,
        feed: ChangeFeed | None = None,
        notified_staleness: float = DEFAULT_NOTIFIED_STALENESS,
    ) -> None:
        """``feed``: this process's change feed; while it listens, the copy is re-checked only
        every ``notified_staleness`` seconds (notifications invalidate it meanwhile)."""
        self._db = db
        self._clock = clock
        self.history_log = ControlHistoryLog(db, clock)
        self.max_staleness = max_staleness
        self.notified_staleness = notified_staleness
        self._feed = feed
        if feed is not None:
            feed.subscribe(Channel.CONTROLS, self.invalidate)
        self._snapshot: ControlSnapshot | None = None
        self._writes = 0  # bumped after every commit here: a refresh that raced one is dropped
        self._refreshing = asyncio.Lock()
        self._stale = False  # set by a failed write: re-read before serving the copy again
        self._retry_at = 0.0  # after a failed refresh, serve the last copy until then
        self._failure: str | None = None

    async def read(self, key: str) -> FlagValue | None:
        control = await self.get(key)
        return None if control is None else control.value

    async def get(self, key: str) -> ControlValue | None:
        """One value with its version, straight from the database (no cache)."""
        try:
            async with self._db.reads() as session:
                row = (await session.execute(_VALUE_OF, {"key": key})).first()
        except (SQLAlchemyError, OSError, TimeoutError) as err:
            raise store_error(err, f"read {key}") from err
        return None if row is None else _value(row)

    async def write(self, key: str, value: FlagValue, *, actor: str, reason: str) -> WriteResult:
        """Set ``key`` in one transaction, read it back, and record the change in history.

        Writing the value a key already has changes nothing but is still recorded (someone
        asked for it); the response says ``changed: false``.
        """
        value = check_value(key, value)
        check_audit(actor, reason)
        return await self._change(key, value, actor, reason)

    async def clear(self, key: str, *, actor: str, reason: str) -> WriteResult:
        """Remove ``key``: applications fall back to their own default (OFREP answers 404).

        The undo of a change to a key that did not exist before; recorded like a write.
        """
        parse_key(key)
        check_audit(actor, reason)
        return await self._change(key, None, actor, reason)

    async def list(self, service: str | None = None) -> builtins.list[ControlValue]:
        """Every value, by key; with ``service``, only that service's keys."""
        query = select(*_VALUE_COLUMNS).order_by(_VALUES.c.key)
        if service is not None:
            query = query.where(_VALUES.c.key.startswith(f"{service}.", autoescape=True))
        try:
            async with self._db.engine.connect() as conn:
                rows = (await conn.execute(query)).all()
        except (SQLAlchemyError, OSError, TimeoutError) as err:
            raise store_error(err, "list control values") from err
        return [_value(row) for row in rows]

    async def history(self, key: str, *, limit: int = 100) -> builtins.list[ControlChange]:
        """Changes of ``key``, newest first, through any backend."""
        return await self.history_log.history(key, limit=limit)

    async def etag(self) -> str:
        """The bulk ETag: the same on every replica for the same stored values."""
        try:
            async with self._db.engine.connect() as conn:
                return await _read_etag(conn)
        except (SQLAlchemyError, OSError, TimeoutError) as err:
            raise store_error(err, "read the control revision") from err

    async def snapshot(self) -> tuple[str, builtins.list[ControlValue]]:
        """The ETag and every value, straight from the database.

        The revision is read *before* the values: a write committing in between makes the
        values newer than the tag (the next poll fetches them again), never older (which would
        answer a later poll with a stale 304).
        """
        try:
            async with self._db.engine.connect() as conn:
                tag = await _read_etag(conn)
                rows = (await conn.execute(_ALL_VALUES)).all()
        except (SQLAlchemyError, OSError, TimeoutError) as err:
            raise store_error(err, "read control values") from err
        return tag, [_value(row) for row in rows]

    async def current(self) -> ControlSnapshot:
        """Every value as of the last write or notification, re-checked at the polling period
        (:attr:`staleness`; see the module docstring).

        One request at a time refreshes; the others keep getting the previous copy meanwhile
        (or wait, when there is none), so a slow database never queues every evaluation. If
        the database fails, the last copy is served and the refresh retried after a second:
        the values cannot have changed while nobody can write them, and falling back to every
        application's code default would silently undo a kill switch.
        """
        cached = self._snapshot
        if cached is not None and (self._fresh(cached) or self._refreshing.locked()):
            return cached
        if cached is None and self._failure is not None and time.monotonic() < self._retry_at:
            raise RetryableError(self._failure)  # never read, database down: fail fast
        async with self._refreshing:
            cached = self._snapshot
            if cached is not None and self._fresh(cached):
                return cached  # refreshed while this request waited
            started, writes = time.monotonic(), self._writes
            try:
                fresh = await self._reread(cached, started)
            except ActionError as err:
                self._failure, self._retry_at = str(err), started + RETRY_AFTER_FAILURE
                if cached is None:
                    log.error(
                        "cannot read control values; retrying in %.0fs: %s",
                        RETRY_AFTER_FAILURE,
                        err,
                    )
                    raise
                log.warning(
                    "serving control values read %.1fs ago, retrying in %.0fs: %s",
                    started - cached.checked_at,
                    RETRY_AFTER_FAILURE,
                    err,
                )
                return cached
            self._failure = None
            if writes == self._writes:
                self._snapshot, self._stale = fresh, False
            return fresh

    async def _reread(self, cached: ControlSnapshot | None, started: float) -> ControlSnapshot:
        """The revision, and the values only if it moved: one connection, one or two reads
        (the same order as :meth:`snapshot`: revision first)."""
        try:
            async with self._db.engine.connect() as conn:
                tag = await _read_etag(conn)
                if cached is not None and cached.etag == tag:
                    return ControlSnapshot(cached.etag, cached.values, started)
                rows = (await conn.execute(_ALL_VALUES)).all()
        except (SQLAlchemyError, OSError, TimeoutError) as err:
            raise store_error(err, "read control values") from err
        return ControlSnapshot(tag, {v.key: v for v in map(_value, rows)}, started)

    def _after_own_write(
        self, revision: tuple[str, int], written: ControlValue | None, key: str
    ) -> None:
        """Bring the copy to the revision this process just committed, without a read, when the
        copy was exactly one revision behind it: the revision row orders every write, so then
        nothing else changed in between. Otherwise drop it (the next read waits for a refresh
        instead of getting the copy from before this write)."""
        epoch, number = revision
        cached = self._snapshot
        if cached is None or cached.etag != _etag(epoch, number - 1):
            self._snapshot = None
            return
        self._snapshot = ControlSnapshot(
            _etag(epoch, number), _with(cached.values, key, written), time.monotonic()
        )

    def invalidate(self) -> None:
        """Re-read before serving the copy again: another process changed a value (called by
        the change feed). A refresh already under way may have read the old values, so its
        result is not kept."""
        self._writes += 1
        self._stale = True

    @property
    def staleness(self) -> float:
        """The current polling period: long while notifications arrive, short otherwise."""
        if self._feed is not None and self._feed.listening:
            return self.notified_staleness
        return self.max_staleness

    def _fresh(self, snapshot: ControlSnapshot) -> bool:
        now = time.monotonic()
        if now < self._retry_at:
            return True  # the database just failed: serve this copy, retry after a pause
        return not self._stale and now - snapshot.checked_at < self.staleness

    async def _change(
        self, key: str, value: FlagValue | None, actor: str, reason: str
    ) -> WriteResult:
        try:
            async with self._db.transaction() as session:
                written = await self._change_in(session, key, value, actor, reason)
                # The copy takes the value as the COMMIT returns (see on_commit).
                on_commit(session, lambda: self._committed(written))
        except (SQLAlchemyError, OSError, TimeoutError) as err:
            # The commit may have landed anyway: re-read at the next chance, but keep the copy
            # to serve if the database stays unreachable.
            self.invalidate()
            raise store_error(err, f"write {key}") from err
        return written.result

    def keeps_values_in(self, db: Database) -> bool:
        """Whether this store's values live in ``db`` (so a transaction there may write them)."""
        return self._db is db

    def in_session(self, session: AsyncSession) -> SessionControlWrites:
        """This store's reads and writes inside a transaction of the caller's (the executor's
        claim, so that the mitigation's control write commits with it: one transaction
        between the claim and the value OFREP serves). The caller reports the outcome."""
        return SessionControlWrites(self, session)

    async def _change_in(
        self,
        session: AsyncSession,
        key: str,
        value: FlagValue | None,
        actor: str,
        reason: str,
        ahead: _Ahead | None = None,
        rider: Rider | None = None,
    ) -> _Written:
        """The write's statements in ``session``: the revision first (the write lock), the
        locked value, the upsert or delete, the history row and the notification. ``ahead``:
        the revision already bumped by this transaction and the value read after it (see
        :meth:`SessionControlWrites.take_write_lock`), so neither is done again. ``rider``:
        writes to send with the upsert's statement, if there is one (PostgreSQL); else they
        stay for :meth:`Rider.settle <bot.store.riders.Rider.settle>`."""
        now = self._clock()
        if ahead is None:
            revision, notified = await _bump_revision(session)
            current = _VALUE_OF_LOCKED if self._db.dialect == "postgresql" else _VALUE_OF
            row = (await session.execute(current, {"key": key})).first()
            existing = None if row is None else _value(row)
        else:
            revision, notified, existing = ahead.revision, ahead.notified, ahead.existing
        before: FlagValue | None = None if existing is None else existing.value
        changed = not same_value(before, value)
        # ``stored``: the row as the database holds it after this write, read back in this
        # transaction: the locked row itself when unchanged, nothing once deleted, the
        # upsert's RETURNING otherwise (the row it wrote, through the same types).
        stored = existing
        change_id: int | None = None  # the history row, when written with the value
        if changed and value is None:
            await session.execute(_DELETE_VALUE, {"key": key})
            stored = None
        elif changed and value is not None:
            values = {
                "key": key,
                "value": value,
                "value_type": value_type_of(value),
                "version": 1 if existing is None else existing.version + 1,
                "updated_at": now,
                "updated_by": actor,
            }
            if self._db.dialect == "postgresql":
                # The history row and its change-log line in the upsert's own statement (one
                # round trip, not two); they say ``value`` was written: checked just below.
                recorded = change_parameters(key, before, value, actor, reason, self.name, now)
                for name, given in values.items():
                    recorded[_WRITTEN + name] = given
                if rider is None:
                    row = (await session.execute(_UPSERT_RECORDED, recorded)).one()
                else:
                    statement = rider.shape.carried_by(_UPSERT_RECORDED)
                    row = (await session.execute(statement, {**recorded, **rider.params})).one()
                    rider.took(row)
                change_id = int(row.change_id)
                stored = None if row.key is None else _value(row)
            else:
                row = (await session.execute(_upsert(self._db.dialect), values)).first()
                stored = None if row is None else _value(row)
        after: FlagValue | None = None if stored is None else stored.value
        if not same_value(after, value):
            raise FinalError(f"{key}: wrote {value!r} but read back {after!r}; rolled back")
        if change_id is None:
            change = await append_change(session, key, before, after, actor, reason, self.name, now)
        else:
            change = ControlChange(change_id, key, before, value, actor, reason, now, self.name)
        if not notified:
            await notify(session, Channel.CONTROLS)  # the other replicas, on commit
        result = WriteResult(
            key=key,
            before=before,
            after=after,
            response={
                "version": None if stored is None else stored.version,
                "changed": changed,
                "revision": revision[1],
                "history_id": change.id,
            },
        )
        return _Written(result, revision, stored)

    def _committed(self, written: _Written) -> None:
        self._writes += 1  # a refresh under way may have read the values before this write
        try:
            self._after_own_write(written.revision, written.stored, written.result.key)
        except Exception:
            self._snapshot = None  # never serve the value from before a committed write
            raise


@dataclass(frozen=True, slots=True)
class _Ahead:
    """A write's first two steps, already done in its transaction: the revision bumped (and
    whether that notified), then the key's value read (None: no row)."""

    revision: tuple[str, int]
    notified: bool
    existing: ControlValue | None


@dataclass(frozen=True, slots=True)
class _Written:
    """A write made in a transaction: what it answers, and what the copy takes once committed."""

    result: WriteResult
    revision: tuple[str, int]
    stored: ControlValue | None


class SessionControlWrites(ControlBackend):
    """The built-in store inside one transaction of the caller's (:meth:`BuiltinControlStore.
    in_session`).

    Reads and writes run in that session, so what they do commits or rolls back with the
    caller's other statements; database errors are raised as they are (the caller's
    transaction retries them), not as ``ActionError``. This process's OFREP copy takes each
    write the moment the transaction commits (:func:`~bot.store.database.on_commit`; a write
    in a savepoint that rolled back is never taken). When the transaction failed the caller
    calls :meth:`failed`: a write's commit may have landed unseen, so the copy is re-read.
    """

    name: ClassVar[str] = BuiltinControlStore.name

    def __init__(self, store: BuiltinControlStore, session: AsyncSession) -> None:
        self._store = store
        self._session = session
        self._written: list[_Written] = []
        # After take_write_lock: its bump, until a write uses it, and every value read or
        # written since (None: no row), which no other writer can change before the commit.
        self._bumped: tuple[tuple[str, int], bool] | None = None
        self._known: dict[str, ControlValue | None] | None = None
        self._rider: Rider | None = None

    @property
    def store(self) -> BuiltinControlStore:
        return self._store

    async def take_write_lock(self, key: str | None = None) -> None:
        """Bump the revision now, before anything is read: every other control write then
        waits for this transaction or committed before it (see the module docstring), so
        what it reads from here on is what its write will find, and the write reads nothing
        again (one statement fewer between an alert and the served value). Only where the
        transaction takes no other lock after this one that a control writer may hold (the
        engine's, for an incident it opened: nobody else can lock that).

        ``key``: the control about to be read, on PostgreSQL read by the bump's own statement
        (one round trip, not two) when that is its value now (see :func:`_bump_and_read`)."""
        if self._known is not None:
            return
        self._known = {}
        ahead = None if key is None else await _bump_and_read(self._session, key)
        if key is None or ahead is None:
            self._bumped = await _bump_revision(self._session)
            return
        self._bumped, current = ahead
        if not isinstance(current, _Stale):
            self._known[key] = current

    def carry(self, rider: Rider) -> None:
        """Send ``rider`` (:mod:`bot.store.riders`) with this transaction's next write of a
        value, as part of its statement (PostgreSQL). The caller then calls :meth:`settle`."""
        if self._rider is not None:
            raise RuntimeError("a rider is already waiting for the next write")
        self._rider = rider

    async def settle(self) -> Any:
        """The value of the rider handed to :meth:`carry` (None without one): from the write
        that carried it, or from its own statement, sent now when no write did."""
        rider, self._rider = self._rider, None
        return None if rider is None else await rider.settle(self._session)

    async def read(self, key: str) -> FlagValue | None:
        known = await self._value_of(key)
        return None if known is None else known.value

    async def _value_of(self, key: str) -> ControlValue | None:
        if self._known is not None and key in self._known:
            return self._known[key]
        row = (await self._session.execute(_VALUE_OF, {"key": key})).first()
        value = None if row is None else _value(row)
        if self._known is not None:
            self._known[key] = value
        return value

    async def write(self, key: str, value: FlagValue, *, actor: str, reason: str) -> WriteResult:
        value = check_value(key, value)
        check_audit(actor, reason)
        return await self._change(key, value, actor, reason)

    async def clear(self, key: str, *, actor: str, reason: str) -> WriteResult:
        parse_key(key)
        check_audit(actor, reason)
        return await self._change(key, None, actor, reason)

    async def _change(
        self, key: str, value: FlagValue | None, actor: str, reason: str
    ) -> WriteResult:
        ahead = None
        if self._bumped is not None:
            revision, notified = self._bumped
            ahead = _Ahead(revision, notified, await self._value_of(key))
            self._bumped = None  # a later write bumps again: one revision per write
        rider = self._rider if self._rider is not None and not self._rider.settled else None
        written = await self._store._change_in(
            self._session, key, value, actor, reason, ahead, rider
        )
        if self._known is not None:
            self._known[key] = written.stored
        self._written.append(written)
        on_commit(self._session, lambda: self._landed(written))
        return written.result

    def _landed(self, written: _Written) -> None:
        if written in self._written:  # else failed() already had the copy re-read
            self._written.remove(written)
            self._store._committed(written)

    def failed(self) -> None:
        """The caller's transaction failed: if anything was written, its commit may have
        landed anyway (a lost connection), so the copy is re-read before it is served."""
        if self._written:
            self._store.invalidate()
        self._written.clear()


# Core (on the tables, not the mapped classes): an ORM-enabled UPDATE or INSERT goes through
# the ORM's bulk machinery, which cost more CPU per write than its statement did (issue 16).
_VALUES = table_of(StoredControlValue)
_REVISIONS = table_of(ControlRevision)
_VALUE_COLUMNS = (
    _VALUES.c.key,
    _VALUES.c.value,
    _VALUES.c.value_type,
    _VALUES.c.version,
    _VALUES.c.updated_at,
    _VALUES.c.updated_by,
)


# Built once: every evaluation's refresh and every write runs them (see bot.store.incidents).
_VALUE_OF = select(*_VALUE_COLUMNS).where(_VALUES.c.key == bindparam("key"))
_VALUE_OF_LOCKED = _VALUE_OF.with_for_update()
_ALL_VALUES = select(*_VALUE_COLUMNS).order_by(_VALUES.c.key)
_DELETE_VALUE = delete(_VALUES).where(_VALUES.c.key == bindparam("key"))
_BUMP_REVISION = (
    update(_REVISIONS)
    .where(_REVISIONS.c.id == _REVISION_ROW)
    .values(revision=_REVISIONS.c.revision + 1)
    .returning(_REVISIONS.c.epoch, _REVISIONS.c.revision)
)
_BUMP_REVISION_NOTIFYING = _BUMP_REVISION.returning(NOTIFYING)  # PostgreSQL only
_REVISION = select(_REVISIONS.c.epoch, _REVISIONS.c.revision).where(
    _REVISIONS.c.id == _REVISION_ROW
)


# PostgreSQL: the upsert with the history row and the change-log line (bot.controls.history),
# one statement; the upsert's parameters prefixed (the history row has a ``key`` too).
_WRITTEN = "written_"


def _upsert_recorded() -> Any:
    insert = upsert("postgresql", _VALUES).values(
        {column.key: bindparam(_WRITTEN + column.key) for column in _VALUE_COLUMNS}
    )
    written = insert.on_conflict_do_update(
        index_elements=[_VALUES.c.key],
        set_={name: insert.excluded[name] for name in _UPSERT_COLUMNS},
    ).returning(*_VALUE_COLUMNS)
    return recorded_with(written.cte("written"))


# PostgreSQL: the revision bumped (the write lock; the NOTIFY in its RETURNING), the revision
# the statement's snapshot holds, and one key's value in that snapshot, as one statement.
_BUMPED = _BUMP_REVISION_NOTIFYING.cte("bumped")
_BUMP_AND_READ = select(
    _BUMPED.c.epoch,
    _BUMPED.c.revision,
    _BUMPED.c.notified,
    select(_REVISIONS.c.revision)
    .where(_REVISIONS.c.id == _REVISION_ROW)
    .scalar_subquery()
    .label("seen"),
    *_VALUE_COLUMNS,
).select_from(_BUMPED.outerjoin(_VALUES, _VALUES.c.key == bindparam("key")))


class _Stale:
    """The value read with the bump is not the value now (another write committed between)."""


_STALE = _Stale()


async def _bump_and_read(
    session: AsyncSession, key: str
) -> tuple[tuple[tuple[str, int], bool], ControlValue | _Stale | None] | None:
    """PostgreSQL: :func:`_bump_revision` and ``key``'s value, in one statement. Every part of
    it reads one snapshot, taken before the bump waited (if it did) for another writer's
    commit; each write bumps the revision, so the value read is the value now exactly when
    the revision the bump found is the snapshot's plus nothing: ``revision == seen + 1``.
    Otherwise :data:`_STALE` (read it again). None where this is not one statement (SQLite)
    or the revision row is missing (nothing done: :func:`_bump_revision` creates it)."""
    params = notify_params(session, Channel.CONTROLS)
    if params is None:
        return None
    row = (await session.execute(_BUMP_AND_READ, {**params, "key": key})).first()
    if row is None:
        return None
    bumped = (str(row.epoch), int(row.revision)), True
    if row.seen is None or int(row.revision) != int(row.seen) + 1:
        return bumped, _STALE
    return bumped, None if row.key is None else _value(row)


def _value(row: Row[*tuple[Any, ...]]) -> ControlValue:
    """A row with the value's columns (:data:`_VALUE_COLUMNS`, among others) as a value."""
    return ControlValue(
        key=row.key,
        value=row.value,
        value_type=row.value_type,
        version=row.version,
        updated_at=row.updated_at,
        updated_by=row.updated_by,
    )


async def _bump_revision(session: AsyncSession) -> tuple[tuple[str, int], bool]:
    """Take the control write lock (see the module docstring); return the epoch and the new
    revision, and whether the statement also notified the other replicas (on PostgreSQL:
    ``pg_notify`` in its RETURNING, one round trip instead of two)."""
    params = notify_params(session, Channel.CONTROLS)
    if params is None:
        bumped = (await session.execute(_BUMP_REVISION)).first()
    else:
        bumped = (await session.execute(_BUMP_REVISION_NOTIFYING, params)).first()
    if bumped is not None:
        return (str(bumped.epoch), int(bumped.revision)), params is not None
    # Only a schema made without the migration lacks the row; losing a race to create it is
    # an IntegrityError, which is retryable.
    epoch = uuid.uuid4().hex[:12]
    session.add(ControlRevision(id=_REVISION_ROW, revision=1, epoch=epoch))
    await session.flush()
    return (epoch, 1), False


def _with(
    values: Mapping[str, ControlValue], key: str, written: ControlValue | None
) -> dict[str, ControlValue]:
    """A copy of ``values`` (in key order, as read) with ``key`` written or removed, still in
    key order: a key already there keeps its place, a new one is put in its place rather than
    the whole copy sorted again (per write, that grew with the number of controls)."""
    if written is None:
        return {k: v for k, v in values.items() if k != key}
    if key not in values:
        at = bisect.bisect(list(values), key)
        if at < len(values):  # else it sorts last: appended below
            items = list(values.items())
            items.insert(at, (key, written))
            return dict(items)
    updated = dict(values)
    updated[key] = written
    return updated


async def _read_etag(conn: AsyncConnection) -> str:
    row = (await conn.execute(_REVISION)).first()
    return _etag("0", 0) if row is None else _etag(row.epoch, row.revision)


def _etag(epoch: str, revision: int) -> str:
    return f'"{epoch}.{revision}"'


_UPSERTS: dict[str, Any] = {}
_UPSERT_COLUMNS = ("value", "value_type", "version", "updated_at", "updated_by")


def _upsert(dialect: str) -> Any:
    """INSERT ... ON CONFLICT (key) DO UPDATE ... RETURNING, in the database's own dialect;
    the row comes as the execution's parameters. Built once per dialect: a new construct per
    write cost more CPU (its cache key, its values) than running it."""
    statement = _UPSERTS.get(dialect)
    if statement is None:
        insert = upsert(dialect, _VALUES)
        statement = insert.on_conflict_do_update(
            index_elements=[_VALUES.c.key],
            set_={name: insert.excluded[name] for name in _UPSERT_COLUMNS},
        ).returning(*_VALUE_COLUMNS)
        _UPSERTS[dialect] = statement
    return statement


_UPSERT_RECORDED = _upsert_recorded()
