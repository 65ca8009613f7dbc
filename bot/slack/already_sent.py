"""Was it already sent? The lookup that makes re-sending a post safe after a doubtful attempt.

``chat.postMessage`` is not idempotent in Slack. Each post carries message metadata
``{"event_type": "ballast_outbox", "event_payload": {"key": <idempotency key>}}``. A row whose
earlier send may have reached Slack unanswered (*in doubt*: a crash while ``sending``, a
timeout, a 5xx) is first looked up with ``conversations.history`` (``conversations.replies``
for thread replies) from just before the row was created; if the message is there, its ``ts``
is recorded and nothing is posted. Where Slack cannot answer the lookup (no
``channels:history`` scope, a DM addressed by user id), the row is posted again: for an
incident a duplicate message is the lesser harm than a missing one.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Protocol

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.budgets import BucketKey
from bot.slack.outbox import OutboxKind
from bot.slack.slack_errors import CallResult, Verdict, classify

log = logging.getLogger(__name__)

METADATA_EVENT = "ballast_outbox"
LOOKUP_KINDS = frozenset({OutboxKind.POST, OutboxKind.THREAD, OutboxKind.NOTIFY})
LOOKUP_MARGIN = timedelta(minutes=5)  # clock skew between us and Slack
LOOKUP_PAGES = 3


class Lookup(Protocol):
    """What the lookup needs of a claimed row."""

    @property
    def id(self) -> int: ...
    @property
    def key(self) -> str: ...
    @property
    def kind(self) -> OutboxKind: ...
    @property
    def channel(self) -> str | None: ...
    @property
    def ts(self) -> str | None: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def lookup_keys(self) -> tuple[BucketKey, ...]: ...


async def find_posted(client: AsyncWebClient, claim: Lookup) -> str | CallResult | None:
    """The ts of this row's message if an earlier attempt posted it; a result to record
    instead when Slack cannot be asked right now; None when it is not there (or Slack cannot
    tell us, which is logged: the row is then sent again)."""
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
                if metadata.get("event_type") == METADATA_EVENT and payload.get("key") == claim.key:
                    return str(message["ts"])
            cursor = (data.get("response_metadata") or {}).get("next_cursor") or None
            if cursor is None:
                return None
    except SlackApiError as err:
        result = classify(err, claim.lookup_keys)
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
