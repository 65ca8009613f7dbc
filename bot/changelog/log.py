"""The change log's reads and writes.

Pipelines and people record through :meth:`ChangeLog.record` (idempotent on the pipeline's own
id); Ballast's control writes append their line (:func:`control_change_line`) in the
transaction of the control history row (:func:`bot.controls.history.append_change`), so a
control change and its change-log line commit together.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Table, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.changelog.kinds import ChangeKind, kind_of_control, service_of_control
from bot.store.database import Database
from bot.store.retry import in_transaction
from bot.store.tables import StoredChange, table_of
from bot.store.upsert import upsert

Clock = Callable[[], datetime]

# Where a change-log line came from.
SOURCE_API = "api"  # a pipeline or a person, through POST /api/v1/changes or the CLI
SOURCE_CONTROL = "control"  # Ballast changed a control (a mitigation, an undo, a person's PUT)
SOURCE_GATE = "gate"  # a release gate's decision


@dataclass(frozen=True, slots=True)
class NewChange:
    """A change to record. ``at`` is when it went live (default: now); ``by`` who shipped it
    (default: whoever records it)."""

    service: str
    kind: ChangeKind
    version: str
    previous: str | None = None
    by: str | None = None
    link: str | None = None
    note: str = ""
    at: datetime | None = None
    external_id: str | None = None


@dataclass(frozen=True, slots=True)
class Change:
    id: int
    external_id: str | None
    service: str
    kind: str
    version: str
    previous: str | None
    by: str
    link: str | None
    note: str
    at: datetime
    recorded_at: datetime
    recorded_by: str
    source: str
    control_key: str | None = None


class ChangeConflict(Exception):
    """An ``id`` recorded before with different content: the pipeline reused an id."""

    def __init__(self, external_id: str, fields: Sequence[str]) -> None:
        self.external_id = external_id
        self.fields = tuple(fields)
        super().__init__(
            f"id {external_id!r} was recorded before with a different "
            f"{', '.join(self.fields)}; a retried record must send the same change, a new "
            "change needs a new id"
        )


# Compared when an id comes again (``at`` only when the retry names it).
_SAME = ("service", "kind", "version", "previous", "link", "note")


class ChangeLog:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def record(
        self, new: NewChange, *, recorded_by: str, source: str = SOURCE_API
    ) -> tuple[Change, bool]:
        """Append ``new``; returns it and whether it is new (False: its id was recorded
        before with the same content). Raises :class:`ChangeConflict` on a reused id."""

        async def work(session: AsyncSession) -> tuple[Change, bool]:
            now = self._clock()
            values = {
                "external_id": new.external_id,
                "service": new.service,
                "kind": new.kind.value,
                "version": new.version,
                "previous": new.previous,
                "by": new.by or recorded_by,
                "link": new.link,
                "note": new.note,
                "at": new.at or now,
                "recorded_at": now,
                "recorded_by": recorded_by,
                "source": source,
            }
            if new.external_id is None:
                row = StoredChange(**values)
                session.add(row)
                await session.flush()
                return _change_of(row), True
            inserted = await session.scalar(
                upsert(session, StoredChange)
                .values(**values)
                .on_conflict_do_nothing(index_elements=["external_id"])
                .returning(StoredChange.id)
            )
            stored = await session.scalar(
                select(StoredChange).where(StoredChange.external_id == new.external_id)
            )
            assert stored is not None
            if inserted is not None:
                return _change_of(stored), True
            differ = [name for name in _SAME if getattr(stored, name) != values[name]]
            if new.at is not None and stored.at != new.at:
                differ.append("at")
            if differ:
                raise ChangeConflict(new.external_id, differ)
            return _change_of(stored), False

        return await in_transaction(self._db, work)

    async def list(
        self,
        *,
        service: str | None = None,
        kinds: Sequence[str] = (),
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
        before_id: int | None = None,
    ) -> list[Change]:
        """Newest first (by when they went live, then id)."""
        query = select(StoredChange)
        if service is not None:
            query = query.where(StoredChange.service == service)
        if kinds:
            query = query.where(StoredChange.kind.in_(list(kinds)))
        if since is not None:
            query = query.where(StoredChange.at >= since)
        if until is not None:
            query = query.where(StoredChange.at <= until)
        if before_id is not None:
            query = query.where(StoredChange.id < before_id)
        query = query.order_by(StoredChange.at.desc(), StoredChange.id.desc()).limit(limit)
        async with self._db.sessions() as session:
            return [_change_of(row) for row in await session.scalars(query)]


def control_change_line(
    key: str,
    before: bool | str | None,
    after: bool | str | None,
    *,
    actor: str,
    reason: str,
    at: datetime,
) -> dict[str, object]:
    """The change-log row of a control write, as :data:`INSERT_CHANGE`'s parameters (the
    control history writes it with its own row in one statement on PostgreSQL)."""
    return {
        "external_id": None,
        "service": service_of_control(key),
        "kind": kind_of_control(key).value,
        "version": _shown(after),
        "previous": None if before is None else _shown(before),
        "by": actor[:200],
        "link": None,
        "note": reason,
        "at": at,
        "recorded_at": at,
        "recorded_by": "ballast",
        "source": SOURCE_CONTROL,
        "control_key": key,
    }


# Core, built once: every control write (a mitigation's included) appends a line, and the
# ORM's unit of work cost more CPU per row than the INSERT (issue 16).
CHANGES: Table = table_of(StoredChange)
INSERT_CHANGE = insert(CHANGES)


def _shown(value: bool | str | None) -> str:
    if value is None:
        return "(removed)"
    if isinstance(value, bool):
        return "true" if value else "false"
    return value[:300]


def _change_of(row: StoredChange) -> Change:
    return Change(
        id=row.id,
        external_id=row.external_id,
        service=row.service,
        kind=row.kind,
        version=row.version,
        previous=row.previous,
        by=row.by,
        link=row.link,
        note=row.note,
        at=row.at,
        recorded_at=row.recorded_at,
        recorded_by=row.recorded_by,
        source=row.source,
        control_key=row.control_key,
    )


async def changes_of_service(
    session: AsyncSession, service: str, since: datetime, limit: int = 50
) -> list[Change]:
    """``service``'s changes that went live at or after ``since``, newest first."""
    rows = await session.scalars(
        select(StoredChange)
        .where(
            StoredChange.service == service,
            StoredChange.at >= since,
            StoredChange.source != SOURCE_GATE,  # decisions, not changes that went live
        )
        .order_by(StoredChange.at.desc(), StoredChange.id.desc())
        .limit(limit)
    )
    return [_change_of(row) for row in rows]


LIVE_KINDS = {
    ChangeKind.MODEL: "model",
    ChangeKind.PROMPT: "prompt_version",
    ChangeKind.RETRIEVAL_INDEX: "retrieval_index",
}
"""The kinds whose live version trace links show, by the placeholder that shows it."""


async def live_versions(session: AsyncSession, service: str, at: datetime) -> dict[str, str]:
    """What was live for ``service`` at ``at``: the version of its latest model, prompt and
    retrieval index change by then (pipelines, people and Ballast's own control writes), by
    placeholder name (``model``, ``prompt_version``, ``retrieval_index``)."""
    out = {}
    for kind, name in LIVE_KINDS.items():
        version = await session.scalar(
            select(StoredChange.version)
            .where(
                StoredChange.service == service,
                StoredChange.kind == kind.value,
                StoredChange.at <= at,
                StoredChange.source != SOURCE_GATE,
            )
            .order_by(StoredChange.at.desc(), StoredChange.id.desc())
            .limit(1)
        )
        if version is not None:
            out[name] = version
    return out


async def shipped_before(
    session: AsyncSession, service: str, kind: ChangeKind, current: str | None
) -> Change | None:
    """The latest change a pipeline or a person recorded that put ``current`` live for
    (``service``, ``kind``) and names what was live before it (``current`` None: the latest
    recorded change of that kind, whatever it shipped). What ``to: previous`` rolls back to
    when the control's own history does not know."""
    query = (
        select(StoredChange)
        .where(
            StoredChange.service == service,
            StoredChange.kind == kind.value,
            StoredChange.source == SOURCE_API,
        )
        .order_by(StoredChange.at.desc(), StoredChange.id.desc())
        .limit(1)
    )
    if current is not None:
        query = query.where(StoredChange.version == current)
    row = await session.scalar(query)
    if row is None or row.previous is None:
        return None
    return _change_of(row)


async def shipped_version(
    session: AsyncSession, service: str, kind: ChangeKind, version: str, until: datetime
) -> Change | None:
    """The latest line (a pipeline's, a person's or a control change) that made ``version``
    live for (``service``, ``kind``) at or before ``until``: who shipped a rollback's target."""
    return _change_or_none(
        await session.scalar(
            select(StoredChange)
            .where(
                StoredChange.service == service,
                StoredChange.kind == kind.value,
                StoredChange.version == version,
                StoredChange.source != SOURCE_GATE,
                StoredChange.at <= until,
            )
            .order_by(StoredChange.at.desc(), StoredChange.id.desc())
            .limit(1)
        )
    )


def _change_or_none(row: StoredChange | None) -> Change | None:
    return None if row is None else _change_of(row)


async def append_gate_decision(
    session: AsyncSession,
    service: str,
    kind: ChangeKind,
    version: str,
    *,
    by: str,
    note: str,
    at: datetime,
) -> None:
    """A release gate's decision in the change log (``source: gate``): the history of what
    was let through or stopped, never shown as a change that went live."""
    session.add(
        StoredChange(
            external_id=None,
            service=service,
            kind=kind.value,
            version=version[:300],
            previous=None,
            by=by[:200],
            link=None,
            note=note,
            at=at,
            recorded_at=at,
            recorded_by=by[:200],
            source=SOURCE_GATE,
            control_key=None,
        )
    )
