"""Who is looking at the console: the same principals as the API, found another way.

A browser cannot send a bearer token, so the console signs people in once (a named token
pasted into the login form, or OIDC) and keeps *who* in its signed session; every request
rebuilds the :class:`Principal` from the live configuration, so removing a token from
ballast.yaml or changing its roles takes effect at the next restart, as for the API. Behind a
trusted proxy (``auth.proxy``) the proxy's header is the principal on every request, no
sign-in needed. Roles and the person identity are the API's; the owner and two-person rules
are the executor's, unchanged.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import HTTPConnection

from bot.auth.authenticator import API_PRINCIPAL, Authenticator, AuthFailure
from bot.auth.methods import AuthMethod
from bot.auth.principal import Principal
from bot.auth.roles import SERVICE_API_ROLES
from bot.auth.tokens import digest, find_token, same_secret

DIGEST_PREFIX = 16  # hex characters of the token's SHA-256 kept in the session to spot rotation


def who_of_token(auth: Authenticator, token: str) -> dict[str, Any] | None:
    """What a session remembers of a pasted token (its name and digest prefix), or None when
    the token is not one this server knows. Never the token itself."""
    token = token.strip()
    if not token:
        return None
    entry = find_token(token, auth.config.tokens)
    if entry is not None:
        return {"m": AuthMethod.TOKEN.value, "n": entry.name, "d": entry.sha256[:DIGEST_PREFIX]}
    if auth.api_token is not None and same_secret(token, auth.api_token):
        return {"m": AuthMethod.API_TOKEN.value, "n": API_PRINCIPAL, "d": _api_digest(auth)}
    return None


def who_of_oidc(principal: Principal) -> dict[str, Any]:
    """A session for a person the provider vouched for (their claim and Slack identity)."""
    return {"m": AuthMethod.OIDC.value, "n": principal.name, "p": principal.person}


def principal_of_session(auth: Authenticator, who: dict[str, Any]) -> Principal | None:
    """The principal a session names, as the configuration now stands; None when it is gone."""
    method = who.get("m")
    name = str(who.get("n", ""))
    if method == AuthMethod.TOKEN.value:
        for entry in auth.config.tokens:
            if entry.name == name and entry.sha256[:DIGEST_PREFIX] == who.get("d"):
                return Principal(
                    entry.name, AuthMethod.TOKEN, frozenset(entry.roles), person=entry.slack_user
                )
        return None
    if method == AuthMethod.API_TOKEN.value:
        if auth.api_token is not None and who.get("d") == _api_digest(auth):
            return Principal(API_PRINCIPAL, AuthMethod.API_TOKEN, SERVICE_API_ROLES)
        return None
    oidc = auth.config.oidc
    if method == AuthMethod.OIDC.value and oidc is not None and auth.oidc is not None and name:
        person = who.get("p")
        return Principal(
            name,
            AuthMethod.OIDC,
            frozenset(oidc.roles),
            person=person if isinstance(person, str) else None,
        )
    return None


async def principal_of_proxy(auth: Authenticator, request: HTTPConnection) -> Principal | None:
    """The trusted proxy's person, when the request came through it (else None)."""
    if auth.proxy is None:
        return None
    try:
        return await auth.proxy(request)
    except AuthFailure:
        return None


def _api_digest(auth: Authenticator) -> str:
    return digest(auth.api_token or "")[:DIGEST_PREFIX]
