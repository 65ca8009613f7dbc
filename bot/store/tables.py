"""The database tables. One schema for SQLite and PostgreSQL; Alembic migrations create it.

Designed for several replicas on one PostgreSQL: the inbox is claimed with ``FOR UPDATE SKIP
LOCKED``; ``incidents.open_key`` is the incident's key while it is open and NULL once resolved,
so a plain UNIQUE constraint makes "one open incident per key" hold in both databases (NULLs
never conflict); the timeline is append-only.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments INTEGER PRIMARY KEY; BIGINT elsewhere.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out, whatever the database keeps (SQLite keeps no zone).

    On SQLite the text is written and read here directly, as SQLAlchemy's ``DATETIME`` writes
    it (``YYYY-MM-DD HH:MM:SS.ffffff``, UTC): its own conversion goes through a dictionary and
    ``%`` one way and a regular expression and ``replace`` the other, 2.2 and 1.3 µs a value,
    and the engine reads and writes several per alert (issue 16); here 1.2 (0.1 for a time
    written shortly before) and 0.2. tests/store/test_utc_datetime.py checks both equal.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else _in_utc(value)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        if dialect.name == "sqlite":
            return sqlite_utc_text
        return super().bind_processor(dialect)

    def result_processor(self, dialect: Dialect, coltype: Any) -> Callable[[Any], Any] | None:
        general = super().result_processor(dialect, coltype)
        if dialect.name != "sqlite":
            return general
        assert general is not None

        def process(value: Any) -> datetime | None:
            # The forms written here and by CURRENT_TIMESTAMP, which ``fromisoformat`` reads as
            # SQLAlchemy's pattern does; with the offset added the result is aware, in UTC.
            # Any other form goes to SQLAlchemy (they differ on some: a date alone, which
            # ``fromisoformat`` leaves naive even with an offset, or fewer digits of a second).
            if isinstance(value, str) and len(value) in (26, 19) and value[10] == " ":
                return datetime.fromisoformat(value + "+00:00")
            parsed: datetime | None = general(value)
            return parsed

        return process


def _in_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r} given; Ballast stores UTC-aware times")
    return value.astimezone(UTC)


_SQLITE_TIME = "%04d-%02d-%02d %02d:%02d:%02d.%06d"
_recent_times: dict[datetime, str] = {}


def sqlite_utc_text(value: datetime | None) -> str | None:
    """A time as SQLite keeps it: UTC, no zone, ``YYYY-MM-DD HH:MM:SS.ffffff`` (what
    ``UtcDateTime`` and SQLAlchemy's ``DATETIME`` made of it)."""
    if value is None:
        return None
    text = _recent_times.get(value)  # equal times are the same instant: the same text
    if text is not None:
        return text
    utc = _in_utc(value)
    text = _SQLITE_TIME % (
        utc.year,
        utc.month,
        utc.day,
        utc.hour,
        utc.minute,
        utc.second,
        utc.microsecond,
    )
    if len(_recent_times) >= 4096:
        _recent_times.clear()
    _recent_times[value] = text
    return text


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UtcDateTime(), dict[str, Any]: JSON()}


def table_of(model: type[Base]) -> Table:
    """A mapped class's table, for Core statements built once (typed: ``__table__`` is not)."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


class InboxAlert(Base):
    """Every distinct alert state received, committed before the webhook's 2xx.

    Unique on (fingerprint, starts_at, status): an Alertmanager HA pair, a retry or a repeat
    notification re-sends the same state and is stored once; a resolve is a new state.
    """

    __tablename__ = "inbox_alerts"
    __table_args__ = (
        UniqueConstraint("fingerprint", "starts_at", "status"),
        # The engine's claim, the lag gauge and the backlog count (unprocessed rows by id):
        # processed rows stay in the inbox, and on ``(processed_at, id)`` PostgreSQL's planner
        # did not take ``processed_at IS NULL`` as fixing the order by id, so the claim walked
        # the primary key over every processed row (62 ms with 50,000 of them, 0.8 ms through
        # this index). That index is gone (migration 0014): no query read it, and every stored
        # and every processed alert wrote it.
        Index(
            "ix_inbox_alerts_unprocessed",
            "id",
            postgresql_where=text("processed_at IS NULL"),
            sqlite_where=text("processed_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(32))
    fingerprint: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime | None]
    labels: Mapped[dict[str, Any]]
    annotations: Mapped[dict[str, Any]]
    generator_url: Mapped[str | None] = mapped_column(Text)
    group_key: Mapped[str | None] = mapped_column(Text)
    truncated_alerts: Mapped[int] = mapped_column(Integer, default=0)
    received_at: Mapped[datetime]
    processed_at: Mapped[datetime | None]
    incident_id: Mapped[int | None] = mapped_column(BigId)
    outcome: Mapped[str | None] = mapped_column(String(32))
    # The webhook's W3C trace context (bot.telemetry), for the engine's span to link; NULL
    # while tracing is off.
    traceparent: Mapped[str | None] = mapped_column(String(64))


class Incident(Base):
    __tablename__ = "incidents"
    __table_args__ = (Index(None, "status", "opened_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(512), index=True)
    # The key while open, NULL when resolved: UNIQUE gives one open incident per key.
    open_key: Mapped[str | None] = mapped_column(String(512), unique=True)
    runbook_id: Mapped[str | None] = mapped_column(String(200))
    # The git commit the runbook was read at when the incident was opened (runbooks.git).
    runbook_revision: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(Text)
    severity: Mapped[str] = mapped_column(String(16))
    service: Mapped[str | None] = mapped_column(String(63))
    group_labels: Mapped[dict[str, Any]]
    alert_count: Mapped[int] = mapped_column(Integer, default=0)
    firing_count: Mapped[int] = mapped_column(Integer, default=0)
    detected_at: Mapped[datetime]  # earliest startsAt of its alerts: when the signal began
    opened_at: Mapped[datetime]  # when Ballast opened it
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(String(200))
    mitigated_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    resolved_by: Mapped[str | None] = mapped_column(String(200))
    reopen_count: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime]


class IncidentAlert(Base):
    """The alerts an incident holds, one row per fingerprint, at their latest state."""

    __tablename__ = "incident_alerts"
    __table_args__ = (
        UniqueConstraint("incident_id", "fingerprint"),
        # A sample of an incident's alerts, firing first (bot.store.incidents.alerts_sample):
        # what its Slack message shows of a storm, read without sorting them all (0015).
        Index(None, "incident_id", "status", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    fingerprint: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime | None]
    labels: Mapped[dict[str, Any]]
    annotations: Mapped[dict[str, Any]]
    generator_url: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(32))
    first_seen_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]


class TimelineEntry(Base):
    """Append-only: what happened to an incident, when, and who did it."""

    __tablename__ = "timeline"
    __table_args__ = (
        Index(None, "incident_id", "id"),
        # Entries of some kinds (bot.store.incidents.timeline_of): a storm incident has one
        # entry per alert, and its verdicts, scorecards and escalations must not cost a read of
        # all of them (migration 0014).
        Index(None, "incident_id", "kind", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(48))
    summary: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]]


class Execution(Base):
    """One run of one mitigation of one incident, from request to apply to undo.

    ``generation`` counts runs of the same mitigation (a mitigation may run again after it was
    undone); UNIQUE (incident, mitigation, generation) is what makes a replayed request or a
    second replica's auto-run a no-op instead of a second change.
    """

    __tablename__ = "executions"
    __table_args__ = (
        UniqueConstraint("incident_id", "mitigation_id", "generation"),
        Index(None, "state", "updated_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    mitigation_id: Mapped[str] = mapped_column(String(64))
    generation: Mapped[int] = mapped_column(Integer, default=1)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    action: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict[str, Any]]
    risk: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(24))
    requested_by: Mapped[str] = mapped_column(String(200))
    approvals: Mapped[dict[str, Any]]  # {"actors": [...]} in order of approval
    outcome: Mapped[dict[str, Any]]  # the ActionOutcome of the apply, for undo and audit
    # The control change planned when it was requested (actions.context.ControlPlan): what
    # approvers saw, and the only change the apply may make. None: not a control change.
    plan: Mapped[dict[str, Any] | None]
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    applied_at: Mapped[datetime | None]
    undone_at: Mapped[datetime | None]
    undone_by: Mapped[str | None] = mapped_column(String(200))
    # The lease of a ``running`` or ``undoing`` row (bot/execution/leases.py): the replica
    # applying it, its last heartbeat, and when another replica may take it over.
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_heartbeat_at: Mapped[datetime | None]
    lease_expires_at: Mapped[datetime | None]


class Timer(Base):
    """A timer that must fire once, cluster-wide: auto-undo, escalation, reminder.

    APScheduler only ticks; rows here are the truth, claimed with SKIP LOCKED on PostgreSQL.
    """

    __tablename__ = "timers"
    __table_args__ = (
        UniqueConstraint("dedup_key"),
        Index(None, "fired_at", "due_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))
    dedup_key: Mapped[str] = mapped_column(String(200))
    due_at: Mapped[datetime]
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    payload: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    # Claimed when a process starts firing it; a claim older than the lease is taken over,
    # so a crash mid-fire delays a timer but never loses it (handlers are idempotent).
    claimed_at: Mapped[datetime | None]
    fired_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(Text)


class StoredControlValue(Base):
    """A control value of the built-in store, as AI applications read it over OFREP.

    ``value`` is a JSON boolean (tool switches) or string; ``version`` counts the changes to
    this key, starting at 1.
    """

    __tablename__ = "control_values"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    value: Mapped[bool | str] = mapped_column(JSON())
    value_type: Mapped[str] = mapped_column(String(8))
    version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime]
    updated_by: Mapped[str] = mapped_column(String(200))


class StoredControlChange(Base):
    """Append-only: every change of a control value made through any backend.

    The audit trail, and what ``to: previous`` rolls back to. ``before`` is NULL when the key
    did not exist, ``after`` when it was removed; ``source`` names the backend (``builtin``,
    ``flagd``, ``unleash``, ...).
    """

    __tablename__ = "control_history"
    __table_args__ = (Index(None, "key", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(200))
    before: Mapped[bool | str | None] = mapped_column(JSON(none_as_null=True))
    after: Mapped[bool | str | None] = mapped_column(JSON(none_as_null=True))
    actor: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime]
    source: Mapped[str] = mapped_column(String(32))


class StoredChange(Base):
    """Append-only: one change to an AI system — a prompt, model, retrieval index, guardrail,
    tool schema, model settings or build went live — recorded by a deploy pipeline, a person,
    a release gate, or Ballast itself when it changes a control (one history for all).

    ``external_id`` is the pipeline's own id: UNIQUE, so a retried record is one row.
    ``at`` is when the change went live (the pipeline may say; else when it was recorded).
    """

    __tablename__ = "changes"
    __table_args__ = (UniqueConstraint("external_id"), Index(None, "service", "at"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    external_id: Mapped[str | None] = mapped_column(String(200))
    service: Mapped[str] = mapped_column(String(63))
    kind: Mapped[str] = mapped_column(String(32))
    version: Mapped[str] = mapped_column(String(300))
    previous: Mapped[str | None] = mapped_column(String(300))
    by: Mapped[str] = mapped_column(String(200))
    link: Mapped[str | None] = mapped_column(Text)
    note: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime]
    recorded_at: Mapped[datetime]
    recorded_by: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(32))
    control_key: Mapped[str | None] = mapped_column(String(200))


class GateDecision(Base):
    """Append-only: each release-gate check, its reasons and the eval scores it was given
    (the scores of a version that passed are what the next version is compared with)."""

    __tablename__ = "gate_decisions"
    __table_args__ = (Index(None, "service", "kind", "version"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    service: Mapped[str] = mapped_column(String(63))
    kind: Mapped[str] = mapped_column(String(32))
    version: Mapped[str] = mapped_column(String(300))
    passed: Mapped[bool]
    reasons: Mapped[list[str]] = mapped_column(JSON)
    scores: Mapped[dict[str, Any]] = mapped_column(JSON)
    at: Mapped[datetime]
    by: Mapped[str] = mapped_column(String(200))


class GateApproval(Base):
    """One owner's approval of releasing a version; one row per person (UNIQUE), so the
    same person approving twice counts once."""

    __tablename__ = "gate_approvals"
    __table_args__ = (UniqueConstraint("service", "kind", "version", "person"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    service: Mapped[str] = mapped_column(String(63))
    kind: Mapped[str] = mapped_column(String(32))
    version: Mapped[str] = mapped_column(String(300))
    person: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime]


class ControlRevision(Base):
    """One row: bumped in every write to ``control_values``, under a row lock.

    The OFREP bulk ETag is ``epoch.revision``; deriving it from the database (not process
    memory) gives every replica the same ETag, and the lock orders revisions like commits.
    ``epoch`` is random per database, so a rebuilt database never reuses an old ETag.
    """

    __tablename__ = "control_revision"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    revision: Mapped[int] = mapped_column(BigInteger)
    epoch: Mapped[str] = mapped_column(String(32))


class SlackOutboxEntry(Base):
    """One Slack Web API call to make, committed in the transaction of the change that caused it.

    ``idempotency_key`` is UNIQUE, so the same message enqueued twice (a replayed event, a
    restart) is one row and one call. Rows of one ``lane`` are sent one at a time in id order
    (an incident's thread replies stay in order); different lanes never wait for each other.
    ``coalesce_key`` is UNIQUE among *pending* rows (a partial index, as both databases allow),
    so a newer update of an incident message replaces the pending one instead of queueing
    behind it. ``in_doubt``: an earlier send may have reached Slack without an answer (crash,
    timeout, 5xx); posts are looked up in the channel before they are sent again.
    """

    __tablename__ = "slack_outbox"
    __table_args__ = (
        UniqueConstraint("idempotency_key"),
        Index(None, "state", "not_before"),
        Index(None, "lane", "state", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    idempotency_key: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(16))
    method: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str | None] = mapped_column(String(64))
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    lane: Mapped[str] = mapped_column(String(255))
    coalesce_key: Mapped[str | None] = mapped_column(String(255))
    payload: Mapped[dict[str, Any]]
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Transient failures (5xx, timeouts, connection errors) so far: the backoff's exponent.
    # Not ``attempts``: rate limits (which bring their own Retry-After) and claims taken over
    # from a crashed replica count there, and must not stretch the next wait.
    failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    revision: Mapped[int] = mapped_column(Integer, default=0)  # +1 on every payload change
    in_doubt: Mapped[bool] = mapped_column(default=False)
    not_before: Mapped[datetime]
    created_at: Mapped[datetime]
    claimed_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    response: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    error: Mapped[str | None] = mapped_column(Text)
    # The trace context of the change that queued the call (bot.telemetry): the delivery's
    # span continues it. NULL while tracing is off.
    traceparent: Mapped[str | None] = mapped_column(String(64))


# At most one pending row per coalesce key: the UPSERT target that coalesces updates.
Index(
    "uq_slack_outbox_pending_coalesce_key",
    SlackOutboxEntry.coalesce_key,
    unique=True,
    sqlite_where=SlackOutboxEntry.state == "pending",
    postgresql_where=SlackOutboxEntry.state == "pending",
)


class SlackIncidentMessage(Base):
    """Where an incident's Slack message is, so updates and thread replies find it after a
    restart. ``updated_at`` is the last ``chat.update`` (NULL: never updated) and spaces the
    next one; ``content_hash`` of what Slack shows lets an unchanged update be skipped."""

    __tablename__ = "slack_messages"

    incident_id: Mapped[int] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    channel: Mapped[str] = mapped_column(String(64))
    ts: Mapped[str] = mapped_column(String(32))
    thread_ts: Mapped[str] = mapped_column(String(32))
    posted_at: Mapped[datetime]
    updated_at: Mapped[datetime | None]
    content_hash: Mapped[str | None] = mapped_column(String(64))


class SlackRender(Base):
    """The incident state its Slack message was last rendered from: ``incident_updated_at``
    as the render read it before reading the rest, written with the render's outbox rows. An
    incident whose ``updated_at`` differs has a change no render showed (one lost in a crash,
    or one that failed): the announcer's catch-up renders it again (migration 0016)."""

    __tablename__ = "slack_renders"

    incident_id: Mapped[int] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    incident_updated_at: Mapped[datetime]
    rendered_at: Mapped[datetime]


class StoredPostmortem(Base):
    """Every postmortem draft made (on resolve, again after a re-open and resolve); the newest
    per incident is the current one. ``polished``: a language model reworded the summary."""

    __tablename__ = "postmortems"
    __table_args__ = (Index(None, "incident_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    markdown: Mapped[str] = mapped_column(Text)
    summary: Mapped[str] = mapped_column(Text)
    polished: Mapped[bool] = mapped_column(default=False)
    path: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
