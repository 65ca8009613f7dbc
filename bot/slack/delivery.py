"""The delivery worker: sends the Slack outbox within Ballast's budgets, and survives Slack.

One pass: claim due rows that head their lane (``FOR UPDATE SKIP LOCKED`` on PostgreSQL) and
whose budgets allow a call, mark them ``sending`` and commit; call Slack outside any
transaction; then record each outcome in its own transaction:

* ``ok`` → ``sent``; a post's ``ts`` goes to ``slack_messages`` (updates and replies wait for it);
* ``429`` → back to ``pending`` until ``Retry-After``, which also pauses that (method, channel);
* a connection error, timeout, 5xx or Slack's ``internal_error`` → retried with backoff, for up
  to ``give_up_after``; a revoked token too (fixing it resumes delivery; nothing is dropped);
* any other Slack error (``channel_not_found``, ``invalid_blocks``, ``msg_too_long``...) →
  ``failed`` with the error, and one log line that names the fix.

**Crash safety.** ``chat.postMessage`` is not idempotent in Slack. Each post carries message
metadata ``{"event_type": "ballast_outbox", "event_payload": {"key": <idempotency key>}}``.
A row whose earlier send may have reached Slack unanswered (``in_doubt``: a crash while
``sending`` — re-claimed once its lease ran out —, a timeout, a 5xx) is first looked up with
``conversations.history`` (``conversations.replies`` for thread replies) from just before the
row was created; if the message is there, its ``ts`` is recorded and nothing is posted. Where
Slack cannot answer the lookup (no ``channels:history`` scope, a DM addressed by user id), the
row is posted again: for an incident a duplicate message is the lesser harm than a missing one.
Updates are idempotent and simply sent again; ephemeral messages and other calls are
at-least-once.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncSession

from bot.errors import ConfigError
from bot.runtime.worker import WorkerLoop
from bot.settings import Settings
from bot.slack import outbox
from bot.slack.budgets import SENDER_LOCK, BucketKey, SlackBudgets
from bot.slack.outbox import OutboxKind, OutboxState, content_hash
from bot.store.database import Database
from bot.store.leases import AdvisoryLease
from bot.store.retry import in_transaction
from bot.store.tables import SlackIncidentMessage, SlackOutboxEntry

log = logging.getLogger(__name__)

ClientFactory = Callable[[], AsyncWebClient]

METADATA_EVENT = "ballast_outbox"
LOOKUP_KINDS = frozenset({OutboxKind.POST, OutboxKind.THREAD, OutboxKind.NOTIFY})
NEEDS_MESSAGE = frozenset({OutboxKind.UPDATE, OutboxKind.THREAD})
NEVER_POSTED = "the incident message was never posted: nothing to update or reply under"
# Slack errors worth another try; the first three may have partly happened (Slack's docs).
MAYBE_APPLIED = frozenset({"internal_error", "fatal_error", "request_timeout"})
TRANSIENT_ERRORS = MAYBE_APPLIED | {"service_unavailable"}
AUTH_ERRORS = frozenset(
    {"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired"}
)
FIXES = {
    "channel_not_found": "check the channel id in ballast.yaml / BALLAST_SLACK_CHANNEL",
    "not_in_channel": "invite the Ballast app to the channel",
    "is_archived": "unarchive the channel or route the runbook elsewhere",
    "invalid_blocks": "the message builder made blocks Slack rejects",
    "msg_too_long": "the message builder must keep text under 40,000 characters",
    "missing_scope": "add the missing scope to the Slack app manifest and reinstall",
    "message_not_found": "the incident message was deleted in Slack",
}
LOOKUP_MARGIN = timedelta(minutes=5)  # clock skew between us and Slack
LOOKUP_PAGES = 3


def slack_client_factory(settings: Settings, *, timeout: int = 15) -> ClientFactory:
    """Web API clients for the worker: ``BALLAST_SLACK_API_URL``, slack_sdk's retries off."""
    if settings.slack_bot_token is None:
        raise ConfigError(
            "the Slack delivery needs a bot token: set SLACK_BOT_TOKEN (xoxb-...), or run "
            "without Slack and read the console"
        )
    token = settings.slack_bot_token.get_secret_value()
    base_url = settings.slack_api_url.rstrip("/") + "/"

    def make() -> AsyncWebClient:
        return AsyncWebClient(token=token, base_url=base_url, timeout=timeout, retry_handlers=[])

    return make


class Verdict(StrEnum):
    SENT = "sent"
    RATE_LIMITED = "rate_limited"
    RETRY = "retry"
    FAILED = "failed"


@dataclass(slots=True)
class _Result:
    verdict: Verdict
    data: dict[str, Any] | None = None
    error: str | None = None
    retry_after: float = 0.0
    paused: tuple[BucketKey, ...] = ()
    in_doubt: bool = False  # this attempt may have reached Slack
    looked_up: bool = False  # a lookup found no earlier delivery
    recovered: bool = False  # a lookup found the earlier delivery: nothing was sent
    slow: bool = False  # back off as far as allowed (a token problem)


@dataclass(slots=True)
class _Claim:
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
    was_in_doubt: bool
    keys: tuple[BucketKey, ...]
    ts: str | None = None  # the incident message, for updates and replies
    lookup_keys: tuple[BucketKey, ...] = ()


@dataclass(frozen=True, slots=True)
class DeliveryPass:
    """``done``: rows claimed or closed; ``wait``: seconds until a refused row may go."""

    done: int
    wait: float | None


@dataclass(slots=True)
class _Batch:
    claims: list[_Claim] = field(default_factory=list)
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


class SlackDelivery:
    """Sends the outbox. ``run`` in the background; ``drain`` in tests."""

    def __init__(
        self,
        db: Database,
        client_factory: ClientFactory,
        clock: Callable[[], datetime],
        budgets: SlackBudgets,
        *,
        lease: timedelta = timedelta(minutes=2),
        call_timeout: float = 20.0,
        poll_interval: float = 1.0,
        batch_size: int = 16,
        scan_limit: int = 500,
        backoff: tuple[float, float] = (1.0, 300.0),
        give_up_after: timedelta = timedelta(hours=24),
    ) -> None:
        if call_timeout * 2 > lease.total_seconds():
            raise ValueError(
                f"lease {lease} must be at least twice call_timeout {call_timeout}s, or a "
                "slow call could be taken over and sent twice"
            )
        self._db = db
        self._client_factory = client_factory
        self._client: AsyncWebClient | None = None
        self._clock = clock
        self._budgets = budgets
        self._lease = lease
        self._call_timeout = call_timeout
        self._batch_size = batch_size
        self._scan_limit = scan_limit
        self._backoff = backoff
        self._give_up_after = give_up_after
        self._sender = AdvisoryLease(
            db, SENDER_LOCK, name="the Slack sender lease", role="sends Ballast's Slack calls"
        )
        self._loop = WorkerLoop(
            self._run_pass,
            poll_interval=poll_interval,
            log=log,
            failure="Slack delivery pass failed; retrying after the poll interval",
        )

    def wake(self) -> None:
        """Send soon: the outbox calls it after a transaction with new rows commits."""
        self._loop.wake()

    async def run(self) -> None:
        """Deliver until stopped: on wake-up, when a budget refills, and every poll interval."""
        await self._loop.run()

    async def _run_pass(self) -> float | None:
        result = await self.deliver_once()
        if result.done:
            return 0
        return None if result.wait is None else max(result.wait, 0.01)

    async def stop(self, worker: asyncio.Task[None], grace: float = 10.0) -> None:
        """Let the calls in flight finish and be recorded; cancel only after ``grace``."""
        await self._loop.stop(worker, grace)
        await self.close()

    async def close(self) -> None:
        """Hand the sender lease to another replica."""
        await self._sender.release()

    async def drain(self) -> int:
        """Send everything that may go now; returns the rows claimed or closed."""
        total = 0
        while True:
            result = await self.deliver_once()
            if not result.done:
                return total
            total += result.done

    async def deliver_once(self) -> DeliveryPass:
        """One pass: claim what may go now, send it concurrently, record each outcome."""
        if not await self._sender.held():
            return DeliveryPass(0, None)
        batch = await self._claim()
        if batch.claims:
            client = self._client_or_new()
            outcomes = await asyncio.gather(
                *(self._send_and_record(client, claim) for claim in batch.claims),
                return_exceptions=True,
            )
            for claim, outcome in zip(batch.claims, outcomes, strict=True):
                if isinstance(outcome, BaseException):
                    log.error(
                        "could not record the Slack call of outbox #%d; it is retried after "
                        "its lease",
                        claim.id,
                        exc_info=outcome,
                    )
        return DeliveryPass(batch.closed + len(batch.claims), batch.wait)

    def _client_or_new(self) -> AsyncWebClient:
        if self._client is None:
            self._client = self._client_factory()
        return self._client

    # -- claiming -----------------------------------------------------------------------------

    async def _claim(self) -> _Batch:
        now = self._clock()
        batch = _Batch()
        try:
            return await in_transaction(
                self._db, lambda session: self._claim_in(session, now, batch)
            )
        except BaseException:
            batch.refund(self._budgets)
            raise

    async def _claim_in(self, session: AsyncSession, now: datetime, batch: _Batch) -> _Batch:
        batch.refund(self._budgets)  # a transaction redone after a conflict starts over
        heads = await outbox.due_heads(session, now, self._lease, self._scan_limit)
        messages = await outbox.incident_messages(session, {r.incident_id for r in heads})
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
        batch: _Batch,
    ) -> None:
        """Claim ``row``, close it without a call, or leave it for later (noting when)."""
        kind = OutboxKind(row.kind)
        if row.state == OutboxState.SENDING:
            log.warning(
                "outbox #%d (%s) was left sending at %s by a process that stopped; taking over",
                row.id, row.idempotency_key, row.claimed_at,
            )  # fmt: skip
            if row.coalesce_key and await outbox.newer_pending(session, row.coalesce_key, row.id):
                await outbox.close(session, row.id, OutboxState.SUPERSEDED, now)
                batch.closed += 1
                return
        channel, ts = row.channel, None
        if kind in NEEDS_MESSAGE:
            assert row.incident_id is not None
            if message is None:
                if await outbox.post_state(session, row.incident_id) in (None, OutboxState.FAILED):
                    await outbox.close(session, row.id, OutboxState.FAILED, now, error=NEVER_POSTED)
                    batch.closed += 1
                return  # waits for the post, whose success wakes the worker
            channel, ts = message.channel, message.thread_ts
            if kind is OutboxKind.UPDATE:
                ts = message.ts
                due = self._budgets.update_due(message.updated_at)
                if due is not None and due > now:
                    # Out of the scan until then; newer payloads coalesce into it meanwhile.
                    await outbox.defer(session, row.id, due)
                    batch.later((due - now).total_seconds())
                    return
                if content_hash(row.payload) == message.content_hash:
                    skipped = {"skipped": "unchanged"}
                    batch.closed += await outbox.close(
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
        if not await outbox.claim(session, row, now, row.in_doubt or kind in LOOKUP_KINDS):
            self._budgets.refund(batch.spent.pop())
            return
        batch.claims.append(
            _Claim(
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
                was_in_doubt=row.in_doubt,
                keys=keys,
                ts=ts,
                lookup_keys=lookup_keys,
            )
        )

    # -- sending ------------------------------------------------------------------------------

    async def _send_and_record(self, client: AsyncWebClient, claim: _Claim) -> None:
        result = await self._send(client, claim)
        await in_transaction(self._db, lambda session: self._record(session, claim, result))

    async def _send(self, client: AsyncWebClient, claim: _Claim) -> _Result:
        looked_up = False
        try:
            async with asyncio.timeout(self._call_timeout):
                if claim.was_in_doubt and claim.lookup_keys:
                    found = await self._find_posted(client, claim)
                    if isinstance(found, _Result):
                        return found
                    if found is not None:
                        data = {"ok": True, "channel": claim.channel, "ts": found}
                        return _Result(Verdict.SENT, data=data, recovered=True)
                    looked_up = True
                response = await client.api_call(claim.method, json=self._arguments(claim))
        except SlackApiError as err:
            result = self._classify(err, claim.keys)
        except (aiohttp.ClientError, OSError, TimeoutError) as err:
            result = _Result(Verdict.RETRY, error=_describe(err), in_doubt=True)
        except Exception as err:
            log.exception("unexpected error sending outbox #%d (%s)", claim.id, claim.key)
            result = _Result(Verdict.RETRY, error=_describe(err), in_doubt=True)
        else:
            data = response.data if isinstance(response.data, dict) else {"ok": True}
            result = _Result(Verdict.SENT, data=data)
        result.looked_up = looked_up
        return result

    def _arguments(self, claim: _Claim) -> dict[str, Any]:
        arguments = dict(claim.payload)
        if claim.kind is OutboxKind.CALL:
            return arguments
        arguments["channel"] = claim.channel
        if claim.kind is OutboxKind.UPDATE:
            arguments["ts"] = claim.ts
        elif claim.kind is OutboxKind.THREAD:
            arguments["thread_ts"] = claim.ts
        if claim.kind in LOOKUP_KINDS:
            arguments["metadata"] = {
                "event_type": METADATA_EVENT,
                "event_payload": {"key": claim.key},
            }
        return arguments

    async def _find_posted(self, client: AsyncWebClient, claim: _Claim) -> str | _Result | None:
        """The ts of this row's message if an earlier attempt posted it; a result to record
        instead when Slack cannot be asked right now."""
        assert claim.channel is not None
        oldest = f"{(claim.created_at - LOOKUP_MARGIN).timestamp():.6f}"
        cursor: str | None = None
        try:
            for _ in range(LOOKUP_PAGES):
                if claim.kind is OutboxKind.THREAD:
                    assert claim.ts is not None
                    response = await client.conversations_replies(
                        channel=claim.channel,
                        ts=claim.ts,
                        oldest=oldest,
                        include_all_metadata=True,
                        limit=200,
                        cursor=cursor,
                    )
                else:
                    response = await client.conversations_history(
                        channel=claim.channel,
                        oldest=oldest,
                        inclusive=True,
                        include_all_metadata=True,
                        limit=200,
                        cursor=cursor,
                    )
                data = response.data if isinstance(response.data, dict) else {}
                for message in data.get("messages") or []:
                    metadata = message.get("metadata") or {}
                    payload = metadata.get("event_payload") or {}
                    if (
                        metadata.get("event_type") == METADATA_EVENT
                        and payload.get("key") == claim.key
                    ):
                        return str(message["ts"])
                cursor = (data.get("response_metadata") or {}).get("next_cursor") or None
                if cursor is None:
                    return None
        except SlackApiError as err:
            result = self._classify(err, claim.lookup_keys)
            if result.verdict is not Verdict.FAILED:
                return result
            log.warning(
                "cannot check whether outbox #%d (%s) already reached Slack (%s); sending it "
                "again, which may duplicate it",
                claim.id,
                claim.key,
                result.error,
            )
        return None

    def _classify(self, err: SlackApiError, keys: tuple[BucketKey, ...]) -> _Result:
        response = err.response
        status = int(getattr(response, "status_code", 0) or getattr(response, "status", 0) or 0)
        data = getattr(response, "data", None)
        error = data.get("error") if isinstance(data, dict) else None
        if status == 429 or error == "ratelimited":
            headers = getattr(response, "headers", None) or {}
            retry_after = _seconds(headers.get("Retry-After") or headers.get("retry-after"))
            return _Result(
                Verdict.RATE_LIMITED, error="ratelimited", retry_after=retry_after, paused=keys
            )
        detail = error or f"HTTP {status}"
        if status >= 500 or error in TRANSIENT_ERRORS:
            return _Result(
                Verdict.RETRY, error=detail, in_doubt=status >= 500 or error in MAYBE_APPLIED
            )
        if error in AUTH_ERRORS:
            return _Result(Verdict.RETRY, error=detail, slow=True)
        if isinstance(data, dict):
            hints = (data.get("response_metadata") or {}).get("messages") or []
            needed = data.get("needed")
            extra = [*hints[:2], *([f"needed: {needed}"] if needed else [])]
            if extra:
                detail = f"{detail} ({'; '.join(str(item) for item in extra)})"
        return _Result(Verdict.FAILED, error=detail, data=data if isinstance(data, dict) else None)

    # -- recording ----------------------------------------------------------------------------

    async def _record(self, session: AsyncSession, claim: _Claim, result: _Result) -> None:
        now = self._clock()
        if result.verdict is Verdict.SENT:
            await self._sent(session, claim, result, now)
            return
        if result.verdict is Verdict.FAILED:
            response = _trim(result.data, claim.kind)
            await outbox.close(
                session, claim.id, OutboxState.FAILED, now, error=result.error, response=response
            )
            fix = FIXES.get((result.error or "").split(" ", 1)[0])
            log.error(
                "Slack %s to %s failed: %s; not retried (outbox #%d, %s)%s",
                claim.method, claim.channel or "-", result.error, claim.id, claim.key,
                f"; fix: {fix}" if fix else "",
            )  # fmt: skip
            return
        if result.verdict is Verdict.RATE_LIMITED:
            self._budgets.pause(result.paused, result.retry_after)
            delay, error = result.retry_after, f"ratelimited; Retry-After {result.retry_after:g}s"
            log.info("Slack %s to %s: %s", claim.method, claim.channel or "-", error)
        elif now - claim.created_at > self._give_up_after:
            error = f"gave up after {claim.attempts} attempts: {result.error}"
            await outbox.close(session, claim.id, OutboxState.FAILED, now, error=error)
            log.error(
                "Slack %s to %s: %s (outbox #%d)", claim.method, claim.channel, error, claim.id
            )
            return
        else:
            delay, error = self._delay(claim.attempts, slow=result.slow), result.error or "?"
            log.log(
                logging.ERROR if result.slow else logging.WARNING,
                "Slack %s to %s failed (%s); retrying in %.0fs",
                claim.method, claim.channel or "-", error, delay,
            )  # fmt: skip
        if claim.coalesce_key and await outbox.newer_pending(session, claim.coalesce_key, claim.id):
            await outbox.close(session, claim.id, OutboxState.SUPERSEDED, now, error=error)
            return
        # Doubt stays until a lookup has shown that no earlier attempt got through.
        in_doubt = result.in_doubt or (claim.was_in_doubt and not result.looked_up)
        not_before = now + timedelta(seconds=delay)
        await outbox.reschedule(session, claim.id, not_before, in_doubt=in_doubt, error=error)

    async def _sent(
        self, session: AsyncSession, claim: _Claim, result: _Result, now: datetime
    ) -> None:
        data = result.data or {}
        response = (_trim(data, claim.kind) or {}) | (
            {"recovered": True} if result.recovered else {}
        )
        await outbox.close(session, claim.id, OutboxState.SENT, now, response=response)
        if claim.incident_id is None:
            return
        if claim.kind is OutboxKind.POST and data.get("ts"):
            channel = str(data.get("channel") or claim.channel)
            # A recovered post may show an older payload: let the next update through.
            shown = None if result.recovered else content_hash(claim.payload)
            await outbox.record_post(
                session, claim.incident_id, channel, str(data["ts"]), now, shown
            )
            self._loop.wake()  # its updates and replies may go now
        elif claim.kind is OutboxKind.UPDATE:
            await outbox.record_update(session, claim.incident_id, now, content_hash(claim.payload))

    def _delay(self, attempts: int, *, slow: bool = False) -> float:
        base, cap = self._backoff
        if slow:
            return cap
        exponent = min(max(0, attempts - 1), 30)
        return float(min(cap, base * 2.0**exponent) * random.uniform(0.8, 1.2))


def _trim(data: dict[str, Any] | None, kind: OutboxKind) -> dict[str, Any] | None:
    """What to keep of a response: where the message is (all of it for other calls)."""
    if data is None or kind is OutboxKind.CALL:
        return data
    return {key: data[key] for key in ("ok", "channel", "ts", "message_ts", "error") if key in data}


def _seconds(value: Any) -> float:
    try:
        return min(max(float(value), 0.0), 3600.0)
    except (TypeError, ValueError):
        return 1.0


def _describe(err: BaseException) -> str:
    text = str(err)
    return f"{type(err).__name__}: {text}" if text else type(err).__name__
