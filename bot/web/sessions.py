"""Signed, stateless session cookies for the web console.

A session is a small JSON document (who signed in, a CSRF token, an expiry) signed with
HMAC-SHA256 under ``BALLAST_WEB_SESSION_SECRET``. Stateless, so every replica reads it
without a table or a migration; it names the principal, never a credential, and each request
checks the principal still exists (a token removed from ballast.yaml ends its sessions at the
next restart). Tampering, another key or a passed expiry make it no session at all.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

COOKIE = "ballast_session"
LIFETIME = 12 * 3600  # seconds a sign-in lasts
ANONYMOUS_LIFETIME = 3600  # a session that only carries a CSRF token (the login form's)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(slots=True)
class Session:
    """What the cookie holds. ``who`` is None until sign-in; ``pending`` holds an OIDC
    login's state, nonce and PKCE verifier between the redirect and the callback."""

    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    expires: float = 0.0
    who: dict[str, Any] | None = None
    pending: dict[str, str] | None = None
    flash: str | None = None  # shown once on the next page (after a form's redirect)

    def signed_in(self, who: dict[str, Any], now: float) -> Session:
        """A fresh session for ``who``: a new CSRF token (no fixation of the old one)."""
        return Session(expires=now + LIFETIME, who=who)


class SessionCodec:
    """Signs and reads session cookies under one key."""

    def __init__(self, key: bytes, clock: Callable[[], float] = time.time) -> None:
        self._key = key
        self._clock = clock

    @classmethod
    def with_secret(cls, secret: str | None) -> SessionCodec:
        """The configured secret, else a random key of this process's own."""
        key = secret.encode() if secret else secrets.token_bytes(32)
        return cls(hashlib.sha256(b"ballast-web-session\0" + key).digest())

    def now(self) -> float:
        return self._clock()

    def dump(self, session: Session) -> str:
        if not session.expires:
            session.expires = self._clock() + ANONYMOUS_LIFETIME
        body = {"c": session.csrf, "e": int(session.expires), "w": session.who}
        if session.pending is not None:
            body["p"] = session.pending
        if session.flash:
            body["f"] = session.flash[:500]
        payload = _b64(json.dumps(body, separators=(",", ":"), sort_keys=True).encode())
        return f"{payload}.{self._sign(payload)}"

    def load(self, cookie: str | None) -> Session | None:
        """The session, or None when absent, tampered with, signed by another key or expired."""
        if not cookie or cookie.count(".") != 1:
            return None
        payload, signature = cookie.split(".")
        if not hmac.compare_digest(signature, self._sign(payload)):
            return None
        try:
            body = json.loads(_unb64(payload))
        except ValueError:
            return None
        if not isinstance(body, dict) or float(body.get("e", 0)) <= self._clock():
            return None
        who = body.get("w")
        pending = body.get("p")
        flash = body.get("f")
        return Session(
            csrf=str(body.get("c", "")),
            expires=float(body["e"]),
            who=who if isinstance(who, dict) else None,
            pending=pending if isinstance(pending, dict) else None,
            flash=flash if isinstance(flash, str) else None,
        )

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode(), hashlib.sha256).digest())


def same_csrf(given: str | None, session: Session | None) -> bool:
    """Does a form's hidden token match its session's (constant time)?"""
    if session is None or not given or not session.csrf:
        return False
    return hmac.compare_digest(given.encode(), session.csrf.encode())
