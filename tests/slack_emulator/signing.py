"""Requests exactly as Slack sends them to an app's Request URL, signed with the signing secret.

docs.slack.dev/authentication/verifying-requests-from-slack: Slack sends
``X-Slack-Request-Timestamp`` (Unix seconds) and ``X-Slack-Signature: v0=<hex>``, the HMAC-SHA256
of ``v0:{timestamp}:{raw body}`` keyed with the app's signing secret; apps reject timestamps more
than five minutes old. docs.slack.dev/apis/events-api: a delivery that was not acknowledged in
3 seconds is retried up to 3 times with ``X-Slack-Retry-Num`` and ``X-Slack-Retry-Reason``
(``http_timeout``, ``http_error``, ``connection_failed``, ``ssl_error``, ``too_many_redirects``,
``unknown_error``); the body, and so its ``event_id``, is the same.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qsl, urlencode

__all__ = ["STALE_AFTER", "RequestSigner", "SignedRequest", "compute_signature"]

STALE_AFTER = 5 * 60
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
USER_AGENT = "Slackbot 1.0 (+https://api.slack.com/robots)"


def compute_signature(signing_secret: str, timestamp: int | str, body: bytes | str) -> str:
    """``v0=`` + hex HMAC-SHA256 of ``v0:{timestamp}:{body}``."""
    raw = body if isinstance(body, bytes) else body.encode()
    base = b"v0:" + str(timestamp).encode() + b":" + raw
    return "v0=" + hmac.new(signing_secret.encode(), base, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class SignedRequest:
    """A body and the headers Slack sends with it; post ``body`` as raw bytes, unchanged."""

    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def timestamp(self) -> int:
        return int(self.headers["X-Slack-Request-Timestamp"])

    def form(self) -> dict[str, str]:
        """The form fields of a slash command or interaction body."""
        return dict(parse_qsl(self.body.decode(), keep_blank_values=True))

    def payload(self) -> Any:
        """The decoded JSON: the ``payload`` field of an interaction, or an event envelope."""
        if self.headers["Content-Type"] == JSON:
            return json.loads(self.body)
        return json.loads(self.form()["payload"])

    def with_bad_signature(self) -> SignedRequest:
        """The same request with a signature that does not match (last hex digit changed)."""
        signature = self.headers["X-Slack-Signature"]
        flipped = signature[:-1] + ("0" if signature[-1] != "0" else "1")
        return replace(self, headers={**self.headers, "X-Slack-Signature": flipped})

    def without_signature(self) -> SignedRequest:
        """The same request with neither signature header, as a forged client might send."""
        headers = {
            k: v
            for k, v in self.headers.items()
            if k not in ("X-Slack-Signature", "X-Slack-Request-Timestamp")
        }
        return replace(self, headers=headers)


class RequestSigner:
    """Builds signed requests for one app (one signing secret)."""

    def __init__(self, signing_secret: str, *, clock: Callable[[], float] = time.time) -> None:
        self.signing_secret = signing_secret
        self._clock = clock

    def sign(
        self,
        body: bytes | str,
        *,
        content_type: str,
        age: float = 0,
        retry_num: int | None = None,
        retry_reason: str | None = None,
    ) -> SignedRequest:
        """Sign ``body`` as sent ``age`` seconds ago (``age > STALE_AFTER`` makes it stale)."""
        raw = body if isinstance(body, bytes) else body.encode()
        timestamp = int(self._clock() - age)
        headers = {
            "Content-Type": content_type,
            "User-Agent": USER_AGENT,
            "X-Slack-Request-Timestamp": str(timestamp),
            "X-Slack-Signature": compute_signature(self.signing_secret, timestamp, raw),
        }
        if retry_num is not None:
            headers["X-Slack-Retry-Num"] = str(retry_num)
            headers["X-Slack-Retry-Reason"] = retry_reason or "http_timeout"
        return SignedRequest(raw, headers)

    def slash_command(self, form: Mapping[str, str], *, age: float = 0) -> SignedRequest:
        """A slash command: the form fields url-encoded in the order given."""
        return self.sign(urlencode(list(form.items())), content_type=FORM, age=age)

    def interaction(self, payload: Mapping[str, Any], *, age: float = 0) -> SignedRequest:
        """An interaction (``block_actions`` …): ``payload=<JSON>`` url-encoded."""
        body = urlencode({"payload": json.dumps(payload, separators=(",", ":"))})
        return self.sign(body, content_type=FORM, age=age)

    def event(
        self,
        envelope: Mapping[str, Any],
        *,
        age: float = 0,
        retry_num: int | None = None,
        retry_reason: str | None = None,
    ) -> SignedRequest:
        """An Events API delivery (``event_callback`` or ``url_verification``) as JSON."""
        body = json.dumps(envelope, separators=(",", ":"))
        return self.sign(
            body, content_type=JSON, age=age, retry_num=retry_num, retry_reason=retry_reason
        )

    def retry(
        self, request: SignedRequest, *, num: int = 1, reason: str = "http_timeout"
    ) -> SignedRequest:
        """Slack's redelivery of ``request``: the same body, signed afresh, with retry headers."""
        return self.sign(
            request.body,
            content_type=request.headers["Content-Type"],
            retry_num=num,
            retry_reason=reason,
        )

    def stale(self, request: SignedRequest, *, age: float = STALE_AFTER + 60) -> SignedRequest:
        """``request`` correctly signed, but with a timestamp older than apps must accept."""
        return self.sign(request.body, content_type=request.headers["Content-Type"], age=age)
