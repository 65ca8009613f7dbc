"""The delivery worker's claiming: which outbox rows may go now, and marking them ``sending``.

A row heads its lane (nothing older of its lane is still active), is due, and its budgets allow
the call (and, for a row in doubt, the lookup before it). An update waits for the incident
message's post and its per-message interval, and is closed without a call when it would show
what is already there; a row another process left ``sending`` is taken over (or closed as
superseded when a newer update replaced it). Budget spent on claims that do not commit is
refunded.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.slack import outbox_rows
from bot.slack.already_sent import LOOKUP_KINDS
from bot.slack.budgets import BucketKey, SlackBudgets
from bot.slack.outbox import OutboxKind, OutboxState, content_hash
from bot.store.database import Database
from bot.store.retry import in_transaction
from bot.store.tables import SlackIncidentMessage, SlackOutboxEntry

log = logging.getLogger(__name__)

NEEDS_MESSAGE = frozenset({OutboxKind.UPDATE, OutboxKind.THREAD})
NEVER_POSTED = "the incident message was never posted: nothing to update or reply under"


@dataclass(slots=True)
class Claim:
    """A row claimed for sending, with what the call needs."""

    id: int
    key: str
    kind: OutboxKind
    method: str
    channel: str | None
    incident_id: int | None
    payload: dict[str, Any]
    coalesce_key: str | None
    created_at: datetime
    attempts: int
    failures: int  # transient failures before this attempt (the backoff's exponent)
    was_in_doubt: bool
    keys: tuple[BucketKey, ...]
    ts: str | None = None  # the incident message, for updates and replies
    lookup_keys: tuple[BucketKey, ...] = ()
    traceparent: str | None = None  # of the change that queued it (bot.telemetry)


@dataclass(slots=True)
class ClaimBatch:
    claims: list[Claim] = field(default_factory=list)
    closed: int = 0
    wait: float | None = None
    spent: list[tuple[BucketKey, ...]] = field(default_factory=list)

    def later(self, seconds: float) -> None:
        self.wait = seconds if self.wait is None else min(self.wait, seconds)

    def refund(self, budgets: SlackBudgets) -> None:
        """Give back what was spent for claims that did not commit, and start over."""
        for keys in self.spent:
            budgets.refund(keys)
        self.claims.clear()
        self.spent.clear()
        self.closed, self.wait = 0, None


class Claimer:
    def __init__(
        self,
        db: Database,
        budgets: SlackBudgets,
        clock: Callable[[], datetime],
        *,
        lease: timedelta,
        batch_size: int,
        scan_limit: int,
    ) -> None:
        self._db = db
        self._budgets = budgets
        self._clock = clock
        self._lease = lease
        self._batch_size = batch_size
        self._scan_limit = scan_limit

    async def claim(self, orphaned_before: datetime | None = None) -> ClaimBatch:
        """Claim what may go now, in one transaction (redone on a conflict); rows left
        ``sending`` before ``orphaned_before`` are taken over without waiting for the lease."""
        now = self._clock()
        batch = ClaimBatch()
        try:
            return await in_transaction(
                self._db, lambda session: self._claim_in(session, now, batch, orphaned_before)
            )
        except BaseException:
            batch.refund(self._budgets)
            raise

    async def _claim_in(
        self,
        session: AsyncSession,
        now: datetime,
        batch: ClaimBatch,
        orphaned_before: datetime | None,
    ) -> ClaimBatch:
        batch.refund(self._budgets)  # a transaction redone after a conflict starts over
        heads = await outbox_rows.due_heads(
            session, now, self._lease, self._scan_limit, orphaned_before
        )
        messages = await outbox_rows.incident_messages(session, {r.incident_id for r in heads})
        for row in heads:
            if len(batch.claims) >= self._batch_size:
                break
            await self._admit(session, row, messages.get(row.incident_id or 0), now, batch)
        return batch

    async def _admit(
        self,
        session: AsyncSession,
        row: SlackOutboxEntry,
        message: SlackIncidentMessage | None,
        now: datetime,
        batch: ClaimBatch,
    ) -> None:
        """Claim ``row``, close it without a call, or leave it for later (noting when)."""
        kind = OutboxKind(row.kind)
        if row.state == OutboxState.SENDING:
            log.warning(
                "outbox #%d (%s) was left sending at %s by a process that stopped; taking over",
                row.id, row.idempotency_key, row.claimed_at,
            )  # fmt: skip
            if row.coalesce_key and await outbox_rows.newer_pending(
                session, row.coalesce_key, row.id
            ):
                await outbox_rows.close(session, row.id, OutboxState.SUPERSEDED, now)
                batch.closed += 1
                return
        channel, ts = row.channel, None
        if kind in NEEDS_MESSAGE:
            assert row.incident_id is not None
            if message is None:
                if await outbox_rows.post_state(session, row.incident_id) in (
                    None,
                    OutboxState.FAILED,
                ):
                    await outbox_rows.close(
                        session, row.id, OutboxState.FAILED, now, error=NEVER_POSTED
                    )
                    batch.closed += 1
                return  # waits for the post, whose success wakes the worker
            channel, ts = message.channel, message.thread_ts
            if kind is OutboxKind.UPDATE:
                ts = message.ts
                due = self._budgets.update_due(message.updated_at)
                if due is not None and due > now:
                    # Out of the scan until then; newer payloads coalesce into it meanwhile.
                    await outbox_rows.defer(session, row.id, due)
                    batch.later((due - now).total_seconds())
                    return
                if content_hash(row.payload) == message.content_hash:
                    skipped = {"skipped": "unchanged"}
                    batch.closed += await outbox_rows.close(
                        session, row.id, OutboxState.SENT, now, response=skipped,
                        revision=row.revision,
                    )  # fmt: skip
                    return
        keys = self._budgets.keys_for(row.method, channel)
        lookup_keys: tuple[BucketKey, ...] = ()
        if row.in_doubt and kind in LOOKUP_KINDS:
            lookup = (
                "conversations.replies" if kind is OutboxKind.THREAD else "conversations.history"
            )
            lookup_keys = self._budgets.keys_for(lookup, channel)
        wait = self._budgets.try_spend(keys + lookup_keys)
        if wait > 0:
            batch.later(wait)
            return
        batch.spent.append(keys + lookup_keys)
        if not await outbox_rows.claim(session, row, now, row.in_doubt or kind in LOOKUP_KINDS):
            self._budgets.refund(batch.spent.pop())
            return
        batch.claims.append(
            Claim(
                id=row.id,
                key=row.idempotency_key,
                kind=kind,
                method=row.method,
                channel=channel,
                incident_id=row.incident_id,
                payload=row.payload,
                coalesce_key=row.coalesce_key,
                created_at=row.created_at,
                attempts=row.attempts + 1,
                failures=row.failures,
                was_in_doubt=row.in_doubt,
                keys=keys,
                ts=ts,
                lookup_keys=lookup_keys,
                traceparent=row.traceparent,
            )
        )
