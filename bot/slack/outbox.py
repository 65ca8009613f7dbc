"""The Slack outbox: every Slack call Ballast makes is a row, written in the caller's transaction.

Enqueueing takes the caller's session, so a message commits atomically with the incident change
that caused it (a transactional outbox): a rolled-back change sends nothing, and a committed one
is sent even if the process dies right after. :class:`bot.slack.delivery.SlackDelivery` sends
the rows later, within Ballast's rate budgets (its queries: :mod:`bot.slack.outbox_rows`).

* **Idempotency keys.** Enqueueing a key that is already there adds nothing (``DUPLICATE``);
  the incident message's key is ``post:<incident id>``, so posting it again after a restart
  never makes a second message. A key whose row *failed* is queued again with the new payload
  (the channel was fixed, the caller tries again).
* **Lanes.** Rows of one lane go out one at a time in id order: ``incident:<id>`` (the incident
  message), ``thread:<id>`` (its thread replies), ``update:<id>`` (its updates),
  ``channel:<id>`` (notifications) and so on. One incident's lanes never wait for another's.
* **Coalescing.** At most one update per incident is pending; a newer one replaces its payload,
  and one made while the message is still unposted is folded into the post. So an alert storm
  costs one update per budget window per incident, and the last state is the one sent.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import and_, event, select, text, union_all, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from bot import telemetry
from bot.store.notifications import Channel, notify
from bot.store.tables import SlackIncidentMessage, SlackOutboxEntry
from bot.store.upsert import upsert

log = logging.getLogger(__name__)

MessageBody = Mapping[str, Any]
"""``chat.postMessage`` arguments without the addressing: ``text``, ``blocks`` (dicts or
``slack_sdk.models.blocks`` objects), ``unfurl_links``... The outbox sets ``channel``, ``ts``,
``thread_ts`` and ``metadata`` itself."""

RESERVED_ARGUMENTS = frozenset({"channel", "ts", "thread_ts", "metadata", "token"})
_WAKE_HOOKED = "ballast.slack_outbox_wake"


class OutboxKind(StrEnum):
    POST = "post"  # the incident message; its ts goes to slack_messages
    UPDATE = "update"  # chat.update of the incident message
    THREAD = "thread"  # a reply under the incident message
    NOTIFY = "notify"  # a message to a channel or a user (DM), not threaded
    EPHEMERAL = "ephemeral"
    CALL = "call"  # any other Web API method; its response is kept for the caller


class OutboxState(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    SUPERSEDED = "superseded"  # an update replaced by a newer one before it was sent


ACTIVE = (OutboxState.PENDING.value, OutboxState.SENDING.value)


class Enqueued(StrEnum):
    """What an enqueue did, for callers and tests; none of them is an error."""

    QUEUED = "queued"
    DUPLICATE = "duplicate"  # the idempotency key is already queued or sent
    COALESCED = "coalesced"  # replaced the payload of a pending update
    FOLDED = "folded"  # the message is not posted yet: the post will carry this payload
    NO_MESSAGE = "no_message"  # the incident has no Slack message to update or reply under


def post_key(incident_id: int) -> str:
    return f"post:{incident_id}"


def content_hash(payload: Mapping[str, Any]) -> str:
    """What Slack would show, hashed: an update equal to what is there is not sent."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


class SlackOutbox:
    """Enqueue Slack calls inside the caller's transaction. Holds no connection or state.

    ``on_commit`` (the delivery worker's ``wake``) is called after the caller's transaction
    commits, never before: a worker woken earlier would find nothing to send.
    """

    def __init__(
        self, *, clock: Callable[[], datetime], on_commit: Callable[[], None] | None = None
    ) -> None:
        self._clock = clock
        self._on_commit = on_commit

    async def post_incident_message(
        self, session: AsyncSession, incident_id: int, channel: str, message: MessageBody
    ) -> Enqueued:
        """Post the incident's message once, ever (key ``post:<incident_id>``)."""
        if await session.get(SlackIncidentMessage, incident_id) is not None:
            return Enqueued.DUPLICATE
        return await self._insert(
            session,
            key=post_key(incident_id),
            kind=OutboxKind.POST,
            method="chat.postMessage",
            channel=channel,
            incident_id=incident_id,
            lane=f"incident:{incident_id}",
            payload=_body(message),
        )

    async def update_incident_message(
        self, session: AsyncSession, incident_id: int, message: MessageBody
    ) -> Enqueued:
        """Bring the incident message to ``message`` (the whole message, not a diff)."""
        payload = _body(message)
        coalesce_key = f"update:{incident_id}"
        # A waiting update goes out after the post, so the newest state belongs in it; only
        # without one may the state ride on a post not yet sent (and not possibly in Slack).
        if await _replace_pending(session, SlackOutboxEntry.coalesce_key == coalesce_key, payload):
            await self._wake_after_commit(session)
            return Enqueued.COALESCED
        unsent_post = and_(
            SlackOutboxEntry.idempotency_key == post_key(incident_id),
            SlackOutboxEntry.in_doubt.is_(False),
        )
        if await _replace_pending(session, unsent_post, payload):
            await self._wake_after_commit(session)
            return Enqueued.FOLDED
        channel = await _message_channel(session, incident_id)
        if channel is None:
            log.debug("incident %d has no Slack message to update; skipped", incident_id)
            return Enqueued.NO_MESSAGE
        key = f"{coalesce_key}:{uuid.uuid4().hex}"
        values = self._values(
            key=key,
            kind=OutboxKind.UPDATE,
            method="chat.update",
            channel=channel,
            incident_id=incident_id,
            lane=coalesce_key,
            payload=payload,
        )
        values["coalesce_key"] = coalesce_key
        insert = upsert(session, SlackOutboxEntry).values(**values)
        statement = insert.on_conflict_do_update(
            index_elements=[SlackOutboxEntry.coalesce_key],
            # Literal, not a parameter: PostgreSQL must prove the partial index's predicate
            # from it, which it cannot from a parameter once a generic plan is used.
            index_where=text("state = 'pending'"),
            set_={"payload": insert.excluded.payload, "revision": SlackOutboxEntry.revision + 1},
        ).returning(SlackOutboxEntry.idempotency_key)
        kept = (await session.execute(statement)).scalar_one()
        await self._wake_after_commit(session)
        return Enqueued.QUEUED if kept == key else Enqueued.COALESCED

    async def post_thread(
        self,
        session: AsyncSession,
        incident_id: int,
        text: str,
        idempotency_key: str,
        *,
        blocks: Sequence[Any] | None = None,
    ) -> Enqueued:
        """Reply under the incident message; replies of one incident keep their order."""
        channel = await _message_channel(session, incident_id)
        if channel is None:
            return Enqueued.NO_MESSAGE
        message: dict[str, Any] = {"text": text}
        if blocks is not None:
            message["blocks"] = blocks
        return await self._insert(
            session,
            key=f"thread:{incident_id}:{idempotency_key}",
            kind=OutboxKind.THREAD,
            method="chat.postMessage",
            channel=channel,
            incident_id=incident_id,
            lane=f"thread:{incident_id}",
            payload=_body(message),
        )

    async def notify(
        self,
        session: AsyncSession,
        channel: str,
        message: MessageBody,
        idempotency_key: str,
        *,
        incident_id: int | None = None,
    ) -> Enqueued:
        """A standalone message to a channel, or to a user id (a DM): escalations, reminders."""
        return await self._insert(
            session,
            key=f"notify:{idempotency_key}",
            kind=OutboxKind.NOTIFY,
            method="chat.postMessage",
            channel=channel,
            incident_id=incident_id,
            lane=f"channel:{channel}",
            payload=_body(message),
        )

    async def call(
        self,
        session: AsyncSession,
        method: str,
        arguments: Mapping[str, Any],
        idempotency_key: str,
        *,
        channel: str | None = None,
        incident_id: int | None = None,
        lane: str | None = None,
    ) -> Enqueued:
        """Any other method (``conversations.create``...), sent at least once; the response is
        kept in the row. Calls sharing ``lane`` go out in order."""
        return await self._insert(
            session,
            key=f"call:{idempotency_key}",
            kind=OutboxKind.CALL,
            method=method,
            channel=channel,
            incident_id=incident_id,
            lane=lane or f"call:{idempotency_key}",
            payload=_json(dict(arguments)),
        )

    async def _insert(
        self,
        session: AsyncSession,
        *,
        key: str,
        kind: OutboxKind,
        method: str,
        channel: str | None,
        incident_id: int | None,
        lane: str,
        payload: dict[str, Any],
    ) -> Enqueued:
        values = self._values(
            key=key,
            kind=kind,
            method=method,
            channel=channel,
            incident_id=incident_id,
            lane=lane,
            payload=payload,
        )
        insert = upsert(session, SlackOutboxEntry).values(**values)
        statement = insert.on_conflict_do_update(
            index_elements=[SlackOutboxEntry.idempotency_key],
            set_={
                "state": OutboxState.PENDING.value,
                "payload": insert.excluded.payload,
                "channel": insert.excluded.channel,
                "not_before": insert.excluded.not_before,
                "error": None,
                "failures": 0,
                "revision": SlackOutboxEntry.revision + 1,
            },
            where=SlackOutboxEntry.state == OutboxState.FAILED,
        ).returning(SlackOutboxEntry.id)
        if (await session.execute(statement)).first() is None:
            return Enqueued.DUPLICATE
        await self._wake_after_commit(session)
        return Enqueued.QUEUED

    def _values(
        self,
        *,
        key: str,
        kind: OutboxKind,
        method: str,
        channel: str | None,
        incident_id: int | None,
        lane: str,
        payload: dict[str, Any],
    ) -> dict[str, Any]:
        now = self._clock()
        return {
            "idempotency_key": key,
            "kind": kind.value,
            "method": method,
            "channel": channel,
            "incident_id": incident_id,
            "lane": lane,
            "coalesce_key": None,
            "payload": payload,
            "state": OutboxState.PENDING.value,
            "attempts": 0,
            "failures": 0,
            "revision": 0,
            "in_doubt": False,
            "not_before": now,
            "created_at": now,
            # The span that queued the call (the incident change, the mitigation run): the
            # delivery's span continues it.
            "traceparent": telemetry.traceparent(),
        }

    async def _wake_after_commit(self, session: AsyncSession) -> None:
        """Wake the worker once this transaction commits (one hook per session), and the
        other replicas' workers too (a ``NOTIFY`` delivered on commit: the replica holding the
        sender lease may be another one)."""
        if self._on_commit is None or session.info.get(_WAKE_HOOKED):
            return
        session.info[_WAKE_HOOKED] = True
        await notify(session, Channel.SLACK_OUTBOX)
        wake = self._on_commit

        def committed(sync_session: Session) -> None:
            sync_session.info.pop(_WAKE_HOOKED, None)
            wake()

        event.listen(session.sync_session, "after_commit", committed, once=True)


async def _replace_pending(session: AsyncSession, which: Any, payload: dict[str, Any]) -> bool:
    """Give a row not yet claimed a newer payload; ``revision`` tells the worker it changed."""
    result = await session.execute(
        update(SlackOutboxEntry)
        .where(which, SlackOutboxEntry.state == OutboxState.PENDING)
        .values(payload=payload, revision=SlackOutboxEntry.revision + 1)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


async def _message_channel(session: AsyncSession, incident_id: int) -> str | None:
    """The incident message's channel: posted, or still on its way (not failed).

    One statement, so one snapshot: read apart, the post could turn ``sent`` between the two
    reads and the message look missing (a thread reply was dropped that way).
    """
    posted = select(SlackIncidentMessage.channel).where(
        SlackIncidentMessage.incident_id == incident_id
    )
    on_its_way = select(SlackOutboxEntry.channel).where(
        SlackOutboxEntry.idempotency_key == post_key(incident_id),
        SlackOutboxEntry.state.in_((OutboxState.PENDING, OutboxState.SENDING)),
    )
    channel = await session.scalar(union_all(posted, on_its_way).limit(1))
    return None if channel is None else str(channel)


def _body(message: MessageBody) -> dict[str, Any]:
    """Check a message body and make it JSON (Block Kit objects become dicts)."""
    reserved = RESERVED_ARGUMENTS.intersection(message)
    if reserved:
        raise ValueError(
            f"message sets {sorted(reserved)}; the outbox sets these itself, leave them out"
        )
    if not message.get("text") and not message.get("blocks"):
        raise ValueError("a Slack message needs `text` or `blocks`; got neither")
    body: dict[str, Any] = _json(dict(message))
    return body


def _json(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(key): _json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json(item) for item in value]
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        return _json(to_dict())
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(f"{type(value).__name__} cannot go into a Slack message; use JSON values")
