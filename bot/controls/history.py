"""The history of every control key, through every backend: audit trail and ``to: previous``.

The built-in store appends to it in the same transaction as each write; changes made through
flagd or Unleash are appended right after they succeed (``bot.controls.recording``), so
rollbacks and postmortems read one history whatever holds the value.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import CTE, Select, bindparam, insert, select, true
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from actions.backends.base import FlagValue
from actions.context import PreviousValue
from actions.control_values import (
    ControlValueError,
    check_audit,
    check_value,
    parse_key,
    same_value,
)
from bot.changelog.kinds import ChangeKind, kind_of_control, service_of_control
from bot.changelog.log import (
    CHANGES,
    INSERT_CHANGE,
    control_change_line,
    shipped_before,
    shipped_version,
)
from bot.controls.failures import store_error
from bot.store.database import Database
from bot.store.tables import StoredControlChange, table_of

Clock = Callable[[], datetime]
log = logging.getLogger(__name__)

_PAGE = 200


@dataclass(frozen=True, slots=True)
class ControlChange:
    """One change of a key through some backend.

    ``before`` is None when the key was new, ``after`` when it was removed.
    """

    id: int
    key: str
    before: FlagValue | None
    after: FlagValue | None
    actor: str
    reason: str
    at: datetime
    source: str


class ControlHistoryLog:
    """The history of every control key, whichever backend holds it.

    Implements ``actions.context.ControlHistory``. The built-in store records its own changes;
    other backends' changes are recorded with :meth:`record_change` by whoever wrote them.
    """

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def record_change(
        self,
        key: str,
        before: FlagValue | None,
        after: FlagValue | None,
        *,
        actor: str,
        reason: str = "",
        source: str,
    ) -> ControlChange:
        """Append a change made through backend ``source`` (``after`` None: key removed).

        Checks key, value and actor. Backends other than the built-in store do not record
        their own changes: whoever calls their ``write``/``clear`` records the result here.
        """
        if after is None:
            parse_key(key)
        else:
            after = check_value(key, after)
        check_audit(actor, reason)
        if not 0 < len(source) <= 32:
            raise ControlValueError(
                f"source must be a backend name of 1 to 32 characters: {source!r}"
            )
        try:
            async with self._db.transaction() as session:
                return await append_change(
                    session, key, before, after, actor, reason, source, self._clock()
                )
        except (SQLAlchemyError, OSError, TimeoutError) as err:
            raise store_error(err, f"record a change of {key}") from err

    async def previous_value(self, key: str, current: FlagValue | None) -> FlagValue | None:
        """The value ``key`` had before it became ``current``; None if unknown or new then."""
        previous = await self.previous(key, current)
        return None if previous is None else previous.value

    async def previous(self, key: str, current: FlagValue | None) -> PreviousValue | None:
        """The value ``key`` had before it became ``current``, who replaced it and when (and
        who shipped it, when recorded); None if unknown or new then.

        The ``before`` of the latest change whose ``after`` is ``current``; changes that set
        a key to the value it already had are skipped (rolling back to them changes nothing).
        When the key's history does not know (the version was shipped by a deploy, not through
        a control), the change log's ``previous`` of the change that shipped ``current`` (of
        the latest change of the key's kind when the key holds nothing).
        """
        try:
            async with self._db.sessions() as session:
                previous = await _previous_in_history(session, key, current)
                if previous is None:
                    previous = await _previous_in_change_log(session, key, current)
                if previous is None:
                    return None
                return await _with_shipper(session, key, previous)
        except (SQLAlchemyError, OSError, TimeoutError) as err:
            raise store_error(err, f"read the history of {key}") from err

    async def history(self, key: str, *, limit: int = 100) -> list[ControlChange]:
        """Changes of ``key``, newest first, from every backend."""
        try:
            async with self._db.sessions() as session:
                rows = await session.scalars(
                    select(StoredControlChange)
                    .where(StoredControlChange.key == key)
                    .order_by(StoredControlChange.id.desc())
                    .limit(limit)
                )
                return [_change_of(row) for row in rows]
        except (SQLAlchemyError, OSError, TimeoutError) as err:
            raise store_error(err, f"read the history of {key}") from err


async def _previous_in_history(
    session: AsyncSession, key: str, current: FlagValue | None
) -> PreviousValue | None:
    if current is None:
        return None
    older_than: int | None = None
    while True:
        query = (
            select(
                StoredControlChange.id,
                StoredControlChange.before,
                StoredControlChange.after,
                StoredControlChange.actor,
                StoredControlChange.at,
            )
            .where(StoredControlChange.key == key)
            .order_by(StoredControlChange.id.desc())
            .limit(_PAGE)
        )
        if older_than is not None:
            query = query.where(StoredControlChange.id < older_than)
        rows = (await session.execute(query)).all()
        for change_id, before, after, actor, at in rows:
            if same_value(after, current) and not same_value(before, after):
                if before is None:
                    return None  # the key was new then: nothing to return to
                return PreviousValue(before, "control history", actor, at)
            older_than = change_id
        if len(rows) < _PAGE:
            return None


async def _previous_in_change_log(
    session: AsyncSession, key: str, current: FlagValue | None
) -> PreviousValue | None:
    """What a pipeline recorded as live before ``current`` (prompt, model and retrieval index
    keys only): a version shipped by a deploy never passed through Ballast's controls."""
    kind = kind_of_control(key)
    if kind is ChangeKind.CONTROL or isinstance(current, bool):
        return None
    shipped = await shipped_before(session, service_of_control(key), kind, current)
    if shipped is None or shipped.previous is None:
        return None
    log.info(
        "to: previous of %s is %s from the change log: %s shipped %s (replacing it) at %s",
        key, shipped.previous, shipped.by, shipped.version, shipped.at.isoformat(),
    )  # fmt: skip
    return PreviousValue(shipped.previous, "change log", shipped.by, shipped.at)


async def _with_shipper(session: AsyncSession, key: str, previous: PreviousValue) -> PreviousValue:
    """``previous`` with who shipped its value and when, if the change log recorded it (prompt,
    model and retrieval index keys: the kinds a pipeline ships)."""
    kind = kind_of_control(key)
    if kind is ChangeKind.CONTROL or isinstance(previous.value, bool):
        return previous
    shipped = await shipped_version(
        session, service_of_control(key), kind, previous.value, previous.replaced_at
    )
    if shipped is None:
        return previous
    return PreviousValue(
        previous.value,
        previous.source,
        previous.replaced_by,
        previous.replaced_at,
        shipped_by=shipped.by,
        shipped_at=shipped.at,
    )


async def append_change(
    session: AsyncSession,
    key: str,
    before: FlagValue | None,
    after: FlagValue | None,
    actor: str,
    reason: str,
    source: str,
    at: datetime,
) -> ControlChange:
    """Append one change in the caller's transaction (the built-in store's own writes), and
    its line in the change log (one history of what changed, whoever changed it)."""
    if session.get_bind().dialect.name == "postgresql":
        both = change_parameters(key, before, after, actor, reason, source, at)
        change_id = (await session.execute(_INSERT_HISTORY_AND_LINE, both)).scalar_one()
    else:
        line = control_change_line(key, before, after, actor=actor, reason=reason, at=at)
        await session.execute(INSERT_CHANGE, line)
        row = _history_row(key, before, after, actor, reason, source, at)
        change_id = (await session.execute(_INSERT_HISTORY, row)).scalar_one()
    return ControlChange(int(change_id), key, before, after, actor, reason, at, source)


def change_parameters(
    key: str,
    before: FlagValue | None,
    after: FlagValue | None,
    actor: str,
    reason: str,
    source: str,
    at: datetime,
) -> dict[str, Any]:
    """The parameters of a change's history row and its change-log line, for a statement of
    :func:`recorded_with` (and the history's own on PostgreSQL)."""
    line = control_change_line(key, before, after, actor=actor, reason=reason, at=at)
    return {
        **_history_row(key, before, after, actor, reason, source, at),
        **{_LINE + name: value for name, value in line.items()},
    }


def _history_row(
    key: str,
    before: FlagValue | None,
    after: FlagValue | None,
    actor: str,
    reason: str,
    source: str,
    at: datetime,
) -> dict[str, Any]:
    return {
        "key": key,
        "before": before,
        "after": after,
        "actor": actor,
        "reason": reason,
        "at": at,
        "source": source,
    }


def recorded_with(write: CTE) -> Select[Any]:
    """PostgreSQL: ``write`` (a data-modifying CTE whose RETURNING is the row it wrote), the
    change's history row and its change-log line as one statement, one round trip (the
    parameters: ``write``'s own and :func:`change_parameters`). Its row: the history row's
    ``change_id`` and ``write``'s columns (none when ``write`` returned no row). All three
    run against one snapshot; none reads what another writes, so the caller checks the row
    written against what the history says it is (and rolls back when they differ)."""
    history = _HISTORY_VALUES.returning(_HISTORY.c.id).cte("history")
    return (
        select(history.c.id.label("change_id"), *write.c)
        .select_from(history.outerjoin(write, true()))
        .add_cte(_LINE_CTE)
    )


# Core, built once: the ORM's unit of work cost more CPU per row than the INSERT (issue 16).
_HISTORY = table_of(StoredControlChange)
_INSERT_HISTORY = insert(_HISTORY).returning(_HISTORY.c.id)
# PostgreSQL: the change-log line in a data-modifying CTE of the same INSERT, one round trip
# instead of two (its parameters prefixed, as both rows have an ``at``, a ``source``...).
_LINE = "line_"
_LINE_CTE = (
    insert(CHANGES)
    .values({c.name: bindparam(_LINE + c.name) for c in CHANGES.c if c.name != "id"})
    .cte("line")
)
_HISTORY_VALUES = insert(_HISTORY).values(
    {c.name: bindparam(c.name) for c in _HISTORY.c if c.name != "id"}
)
_INSERT_HISTORY_AND_LINE = _HISTORY_VALUES.add_cte(_LINE_CTE).returning(_HISTORY.c.id)


def _change_of(row: StoredControlChange) -> ControlChange:
    return ControlChange(
        id=row.id,
        key=row.key,
        before=row.before,
        after=row.after,
        actor=row.actor,
        reason=row.reason,
        at=row.at,
        source=row.source,
    )
