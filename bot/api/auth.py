"""Access to the endpoints outside the API (webhooks, OFREP, /metrics): a shared secret,
compared in constant time, or a principal with the right role. Closed by default.

A webhook may send the secret as a bearer token or as the password of HTTP basic auth
(Alertmanager's ``basic_auth``, Grafana's username/password; the username is not checked).
OFREP clients may send it as ``X-API-Key`` too. API principals are found by :mod:`bot.auth`."""

from __future__ import annotations

import base64
import binascii

from fastapi import HTTPException, Request, status
from pydantic import SecretStr

from bot.api.principals import count_failure
from bot.auth.authenticator import AuthFailure
from bot.auth.roles import Role
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


async def require_access(
    request: Request,
    expected: SecretStr | None,
    *,
    role: Role,
    what: str,
    env: str,
    basic: bool = False,
    api_key: bool = False,
) -> None:
    """Let the request in if it carries ``expected`` or a principal with ``role``; else 401.

    ``expected`` may come as a bearer token, with ``basic`` as an HTTP basic-auth password, with
    ``api_key`` as ``X-API-Key``. A named token, OIDC token or trusted proxy header whose
    principal has ``role`` is let in too (a principal without it gets 403). Closed by default:
    only ``insecure_allow_anonymous`` opens an endpoint whose ``expected`` is unset.
    """
    services = request.app.state.services
    if expected is None and services.settings.insecure_allow_anonymous:
        return
    bearer = bearer_token(request)
    given = bearer
    if given is None and basic:
        given = basic_password(request)
    if given is None and api_key:
        given = request.headers.get("x-api-key")
    if (
        expected is not None
        and given is not None
        and same_secret(given, expected.get_secret_value())
    ):
        return
    auth = services.auth
    if auth.configured:
        try:
            principal = await auth.authenticate(request)
        except AuthFailure:
            principal = None
        if principal is not None:
            if principal.has(role):
                return
            count_failure(request, "forbidden")
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, f"{principal.name} lacks the {role} role for {what}"
            )
    count_failure(request, "missing" if given is None else "wrong_secret")
    raise HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        detail=f"missing or wrong credentials for {what}: send {env} or a named token with "
        f"the {role} role",
        headers={"WWW-Authenticate": "Bearer"},
    )
