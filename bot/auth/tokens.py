"""Named tokens: made here, stored only as SHA-256, matched in constant time."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from bot.auth.config import TokenConfig

PREFIX = "blst_"


def new_token() -> str:
    """A fresh token: 256 random bits, prefixed so secret scanners can spot it."""
    return PREFIX + secrets.token_urlsafe(32)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def same_secret(given: str, expected: str) -> bool:
    """Constant-time equality of two secrets of any length (compares their digests)."""
    return hmac.compare_digest(
        hashlib.sha256(given.encode()).digest(), hashlib.sha256(expected.encode()).digest()
    )


def find_token(given: str, table: list[TokenConfig]) -> TokenConfig | None:
    """The entry whose digest is the given token's; every entry is compared, in constant time."""
    wanted = digest(given).encode()
    found: TokenConfig | None = None
    for entry in table:
        if hmac.compare_digest(wanted, entry.sha256.encode()):
            found = entry
    return found


def config_line(name: str, token: str, roles: list[str], slack_user: str | None) -> str:
    """The ballast.yaml entry (under ``auth.tokens``) for a new token."""
    fields = [f"name: {name}", f"sha256: {digest(token)}", f"roles: [{', '.join(roles)}]"]
    if slack_user:
        fields.append(f"slack_user: {slack_user}")
    return "- {" + ", ".join(fields) + "}"
