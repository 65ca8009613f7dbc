"""Shared-secret bearer checks (webhooks, OFREP), compared in constant time.

API principals are found by :mod:`bot.auth`."""

from __future__ import annotations

import hmac

from fastapi import HTTPException, Request, status
from pydantic import SecretStr


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    return token.strip()


def require_token(request: Request, expected: SecretStr | None, *, what: str, env: str) -> None:
    """Raise 401 unless the request carries the expected bearer token (none set: open)."""
    if expected is None:
        return
    given = bearer_token(request)
    if given is None or not hmac.compare_digest(
        given.encode(), expected.get_secret_value().encode()
    ):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail=f"missing or wrong bearer token for {what} (see {env})",
            headers={"WWW-Authenticate": "Bearer"},
        )
