"""Shared-secret checks (webhooks, OFREP, /metrics), compared in constant time.

A webhook may send the secret as a bearer token or as the password of HTTP basic auth
(Alertmanager's ``basic_auth``, Grafana's username/password; the username is not checked).
OFREP clients may send it as ``X-API-Key`` too. API principals are found by :mod:`bot.auth`."""

from __future__ import annotations

import base64
import binascii

from fastapi import HTTPException, Request, status
from pydantic import SecretStr

from bot.api.principals import count_failure
from bot.auth.tokens import same_secret


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    return token.strip()


def basic_password(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    _user, sep, password = decoded.partition(":")
    return password if sep else None


def require_token(
    request: Request,
    expected: SecretStr | None,
    *,
    what: str,
    env: str,
    basic: bool = False,
    api_key: bool = False,
) -> None:
    """Raise 401 unless the request carries the expected secret (none set: open).

    ``basic`` also accepts it as an HTTP basic-auth password, ``api_key`` as ``X-API-Key``.
    """
    if expected is None:
        return
    given = bearer_token(request)
    if given is None and basic:
        given = basic_password(request)
    if given is None and api_key:
        given = request.headers.get("x-api-key")
    if given is None or not same_secret(given, expected.get_secret_value()):
        count_failure(request, "missing" if given is None else "wrong_secret")
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail=f"missing or wrong token for {what} (see {env})",
            headers={"WWW-Authenticate": "Bearer"},
        )
