"""What Slack's answers mean for an outbox row: sent, rate limited, worth another try, or failed.

* ``ok`` → sent;
* ``429`` (or ``ratelimited``) → rate limited until ``Retry-After``, which also pauses the
  call's budgets;
* a 5xx or Slack's ``internal_error``/``fatal_error``/``request_timeout``/
  ``service_unavailable`` → retried; the first three and a 5xx may have partly happened, so
  the row is *in doubt* (see :mod:`bot.slack.already_sent`);
* a revoked or invalid token → retried slowly (fixing it resumes delivery; nothing is dropped);
* any other Slack error → failed, with the fix to name in the log (``FIXES``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from slack_sdk.errors import SlackApiError

from bot.slack.budgets import BucketKey

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


class Verdict(StrEnum):
    SENT = "sent"
    RATE_LIMITED = "rate_limited"
    RETRY = "retry"
    FAILED = "failed"


@dataclass(slots=True)
class CallResult:
    """What one attempt at a row's Slack call came to."""

    verdict: Verdict
    data: dict[str, Any] | None = None
    error: str | None = None
    retry_after: float = 0.0
    paused: tuple[BucketKey, ...] = ()
    in_doubt: bool = False  # this attempt may have reached Slack
    looked_up: bool = False  # a lookup found no earlier delivery
    recovered: bool = False  # a lookup found the earlier delivery: nothing was sent
    slow: bool = False  # back off as far as allowed (a token problem)


def classify(err: SlackApiError, keys: tuple[BucketKey, ...]) -> CallResult:
    """What Slack's error answer means for the row; ``keys``: the buckets a 429 pauses."""
    response = err.response
    status = int(getattr(response, "status_code", 0) or getattr(response, "status", 0) or 0)
    data = getattr(response, "data", None)
    error = data.get("error") if isinstance(data, dict) else None
    if status == 429 or error == "ratelimited":
        headers = getattr(response, "headers", None) or {}
        retry_after = retry_after_seconds(headers.get("Retry-After") or headers.get("retry-after"))
        return CallResult(
            Verdict.RATE_LIMITED, error="ratelimited", retry_after=retry_after, paused=keys
        )
    detail = error or f"HTTP {status}"
    if status >= 500 or error in TRANSIENT_ERRORS:
        return CallResult(
            Verdict.RETRY, error=detail, in_doubt=status >= 500 or error in MAYBE_APPLIED
        )
    if error in AUTH_ERRORS:
        return CallResult(Verdict.RETRY, error=detail, slow=True)
    if isinstance(data, dict):
        hints = (data.get("response_metadata") or {}).get("messages") or []
        needed = data.get("needed")
        extra = [*hints[:2], *([f"needed: {needed}"] if needed else [])]
        if extra:
            detail = f"{detail} ({'; '.join(str(item) for item in extra)})"
    return CallResult(Verdict.FAILED, error=detail, data=data if isinstance(data, dict) else None)


def retry_after_seconds(value: Any) -> float:
    try:
        return min(max(float(value), 0.0), 3600.0)
    except (TypeError, ValueError):
        return 1.0


def describe(err: BaseException) -> str:
    text = str(err)
    return f"{type(err).__name__}: {text}" if text else type(err).__name__
