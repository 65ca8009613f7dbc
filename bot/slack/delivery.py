"""The delivery worker: sends the Slack outbox within Ballast's budgets, and survives Slack.

One pass: claim due rows that head their lane (``FOR UPDATE SKIP LOCKED`` on PostgreSQL) and
whose budgets allow a call, mark them ``sending`` and commit; call Slack outside any
transaction; then record each outcome in its own transaction:

* ``ok`` → ``sent``; a post's ``ts`` goes to ``slack_messages`` (updates and replies wait for it);
* ``429`` → back to ``pending`` until ``Retry-After``, which also pauses that (method, channel);
* a connection error, timeout, 5xx or Slack's ``internal_error`` → retried with backoff (doubling
  with the row's transient failures, not its attempts: 429s and takeovers do not stretch it), for
  up to ``give_up_after``; a revoked token too (fixing it resumes delivery; nothing is dropped);
* any other Slack error (``channel_not_found``, ``invalid_blocks``, ``msg_too_long``...) →
  ``failed`` with the error, and one log line that names the fix.

**Crash safety.** One process sends (the sender lease). A row left ``sending`` by a process
that died is taken over after its claim's ``lease``, or sooner by whichever process is the
sender: once the row's call can no longer be in flight (``call_timeout`` plus
:data:`RECORD_GRACE` after the claim). Its claimant died, lost the sender lease to this process
without noticing before it claimed, or could not record the outcome (its connection was
terminated): either way a replica's trouble delays an incident message by about half a
minute, not the whole lease. The sender's own passes run one after another, so none of its
own calls is in flight while it claims. A post that may have reached Slack unanswered is looked up
before it is sent again (:mod:`bot.slack.already_sent`); updates are idempotent and simply sent
again; ephemeral messages and other calls are at-least-once. Claiming:
:mod:`bot.slack.delivery_claims`; what Slack's answers mean: :mod:`bot.slack.slack_errors`.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from opentelemetry.trace import SpanKind, StatusCode
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncSession

from bot import telemetry
from bot.errors import ConfigError
from bot.runtime.worker import WorkerLoop
from bot.settings import Settings
from bot.slack import outbox_rows
from bot.slack.already_sent import LOOKUP_KINDS, METADATA_EVENT, find_posted
from bot.slack.budgets import SENDER_LOCK, SlackBudgets
from bot.slack.delivery_claims import Claim, Claimer
from bot.slack.outbox import OutboxKind, OutboxState, content_hash
from bot.slack.slack_errors import FIXES, CallResult, Verdict, classify, describe
from bot.store.database import Database
from bot.store.leases import AdvisoryLease
from bot.store.retry import in_transaction
from bot.telemetry import names

log = logging.getLogger(__name__)

ClientFactory = Callable[[], AsyncWebClient]

# How long after its call's timeout a claim may still be recording its outcome (the record
# transaction, retried on a conflict or a dropped connection).
RECORD_GRACE = timedelta(seconds=10)


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


@dataclass(frozen=True, slots=True)
class DeliveryPass:
    """``done``: rows claimed or closed; ``wait``: seconds until a refused row may go."""

    done: int
    wait: float | None


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
        self._call_timeout = call_timeout
        self._backoff = backoff
        self._give_up_after = give_up_after
        self._claimer = Claimer(
            db, budgets, clock, lease=lease, batch_size=batch_size, scan_limit=scan_limit
        )
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
        batch = await self._claimer.claim(self._orphaned_before())
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

    def _orphaned_before(self) -> datetime:
        """Claims older than this have no call in flight any more (each call is cut at
        ``call_timeout``) and nobody recorded them: they are orphans, whoever made them."""
        in_flight = timedelta(seconds=self._call_timeout) + RECORD_GRACE
        return self._clock() - in_flight

    def _client_or_new(self) -> AsyncWebClient:
        if self._client is None:
            self._client = self._client_factory()
        return self._client

    # -- sending ------------------------------------------------------------------------------

    async def _send_and_record(self, client: AsyncWebClient, claim: Claim) -> None:
        if not telemetry.enabled():
            result = await self._send(client, claim)
        else:
            with telemetry.span(
                f"{names.SLACK_DELIVERY} {claim.method}",
                {names.SLACK_METHOD: claim.method, names.INCIDENT_ID: claim.incident_id},
                parent=claim.traceparent,
                kind=SpanKind.CLIENT,
            ) as span:
                result = await self._send(client, claim)
                span.set_attribute("ballast.slack.verdict", result.verdict.value)
                if result.verdict is not Verdict.SENT:
                    span.set_status(StatusCode.ERROR, result.error or result.verdict.value)
        await in_transaction(self._db, lambda session: self._record(session, claim, result))

    async def _send(self, client: AsyncWebClient, claim: Claim) -> CallResult:
        looked_up = False
        try:
            async with asyncio.timeout(self._call_timeout):
                if claim.was_in_doubt and claim.lookup_keys:
                    found = await find_posted(client, claim)
                    if isinstance(found, CallResult):
                        return found
                    if found is not None:
                        data = {"ok": True, "channel": claim.channel, "ts": found}
                        return CallResult(Verdict.SENT, data=data, recovered=True)
                    looked_up = True
                response = await client.api_call(claim.method, json=self._arguments(claim))
        except SlackApiError as err:
            result = classify(err, claim.keys)
        except (aiohttp.ClientError, OSError, TimeoutError) as err:
            result = CallResult(Verdict.RETRY, error=describe(err), in_doubt=True)
        except Exception as err:
            log.exception("unexpected error sending outbox #%d (%s)", claim.id, claim.key)
            result = CallResult(Verdict.RETRY, error=describe(err), in_doubt=True)
        else:
            data = response.data if isinstance(response.data, dict) else {"ok": True}
            result = CallResult(Verdict.SENT, data=data)
        result.looked_up = looked_up
        return result

    def _arguments(self, claim: Claim) -> dict[str, Any]:
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

    # -- recording ----------------------------------------------------------------------------

    async def _record(self, session: AsyncSession, claim: Claim, result: CallResult) -> None:
        now = self._clock()
        if result.verdict is Verdict.SENT:
            await self._sent(session, claim, result, now)
            return
        if result.verdict is Verdict.FAILED:
            response = _trim(result.data, claim.kind)
            await outbox_rows.close(
                session, claim.id, OutboxState.FAILED, now, error=result.error, response=response
            )
            fix = FIXES.get((result.error or "").split(" ", 1)[0])
            log.error(
                "Slack %s to %s failed: %s; not retried (outbox #%d, %s)%s",
                claim.method, claim.channel or "-", result.error, claim.id, claim.key,
                f"; fix: {fix}" if fix else "",
            )  # fmt: skip
            return
        rate_limited = result.verdict is Verdict.RATE_LIMITED
        if rate_limited:
            self._budgets.pause(result.paused, result.retry_after)
            delay, error = result.retry_after, f"ratelimited; Retry-After {result.retry_after:g}s"
            log.info("Slack %s to %s: %s", claim.method, claim.channel or "-", error)
        elif now - claim.created_at > self._give_up_after:
            error = f"gave up after {claim.attempts} attempts: {result.error}"
            await outbox_rows.close(session, claim.id, OutboxState.FAILED, now, error=error)
            log.error(
                "Slack %s to %s: %s (outbox #%d)", claim.method, claim.channel, error, claim.id
            )
            return
        else:
            delay = self._delay(claim.failures + 1, slow=result.slow)
            error = result.error or "?"
            log.log(
                logging.ERROR if result.slow else logging.WARNING,
                "Slack %s to %s failed (%s); retrying in %.0fs",
                claim.method, claim.channel or "-", error, delay,
            )  # fmt: skip
        if claim.coalesce_key and await outbox_rows.newer_pending(
            session, claim.coalesce_key, claim.id
        ):
            await outbox_rows.close(session, claim.id, OutboxState.SUPERSEDED, now, error=error)
            return
        # Doubt stays until a lookup has shown that no earlier attempt got through.
        in_doubt = result.in_doubt or (claim.was_in_doubt and not result.looked_up)
        not_before = now + timedelta(seconds=delay)
        await outbox_rows.reschedule(
            session, claim.id, not_before, in_doubt=in_doubt, error=error, failed=not rate_limited
        )

    async def _sent(
        self, session: AsyncSession, claim: Claim, result: CallResult, now: datetime
    ) -> None:
        data = result.data or {}
        response = (_trim(data, claim.kind) or {}) | (
            {"recovered": True} if result.recovered else {}
        )
        await outbox_rows.close(session, claim.id, OutboxState.SENT, now, response=response)
        if claim.incident_id is None:
            return
        if claim.kind is OutboxKind.POST and data.get("ts"):
            channel = str(data.get("channel") or claim.channel)
            # A recovered post may show an older payload: let the next update through.
            shown = None if result.recovered else content_hash(claim.payload)
            await outbox_rows.record_post(
                session, claim.incident_id, channel, str(data["ts"]), now, shown
            )
            self._loop.wake()  # its updates and replies may go now
        elif claim.kind is OutboxKind.UPDATE:
            await outbox_rows.record_update(
                session, claim.incident_id, now, content_hash(claim.payload)
            )

    def _delay(self, failures: int, *, slow: bool = False) -> float:
        """The wait after a row's ``failures``-th transient failure: doubling from ``base``
        to ``cap``, +-20%. Rate limits and crashed claimants do not count: a row that met a
        few 429s and then one 5xx waits a second, not minutes."""
        base, cap = self._backoff
        if slow:
            return cap
        exponent = min(max(0, failures - 1), 30)
        return float(min(cap, base * 2.0**exponent) * random.uniform(0.8, 1.2))


def _trim(data: dict[str, Any] | None, kind: OutboxKind) -> dict[str, Any] | None:
    """What to keep of a response: where the message is (all of it for other calls)."""
    if data is None or kind is OutboxKind.CALL:
        return data
    return {key: data[key] for key in ("ok", "channel", "ts", "message_ts", "error") if key in data}
