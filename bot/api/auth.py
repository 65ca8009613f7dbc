"""Bearer-token checks, compared in constant time."""

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
    """Raise 401 unless the request carries the expected bearer token.

    With no token configured, webhooks stay open (the embedded default) but state-changing API
    calls are refused: an unauthenticated write API is never on by accident.
    """
    if expected is None:
        if what == "webhook":
            return
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail=f"{what} calls that change state are disabled: set {env} on the server "
            "and send it as 'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    given = bearer_token(request)
    if given is None or not hmac.compare_digest(
        given.encode(), expected.get_secret_value().encode()
    ):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail=f"missing or wrong bearer token for {what} (see {env})",
            headers={"WWW-Authenticate": "Bearer"},
        )
