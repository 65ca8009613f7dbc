"""The API's principals, as FastAPI dependencies.

``Depends(require(Role.X))`` authenticates, checks the role, counts and logs failures (never
the secret) and hands the handler the principal; :func:`acting` turns it into the actor."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from fastapi import HTTPException, Request, status

from bot.auth.authenticator import Authenticator, AuthFailure
from bot.auth.principal import Principal
from bot.auth.roles import Role
from bot.errors import PolicyError
from bot.incidents.actors import Actor

log = logging.getLogger(__name__)

CHALLENGE = {"WWW-Authenticate": "Bearer"}


def authenticator_of(request: Request) -> Authenticator:
    auth: Authenticator = request.app.state.services.auth
    return auth


def endpoint_of(request: Request) -> str:
    """The route's path template (bounded cardinality for metrics), else the path."""
    route = request.scope.get("route")
    return str(getattr(route, "path", request.url.path))


def count_failure(request: Request, reason: str) -> None:
    request.app.state.services.metrics.auth_failures.labels(endpoint_of(request), reason).inc()
    client = request.client.host if request.client else "?"
    log.warning(
        "authentication failed: %s %s from %s: %s",
        request.method,
        endpoint_of(request),
        client,
        reason,
    )


async def authenticate(request: Request) -> Principal:
    auth = authenticator_of(request)
    if not auth.configured:
        count_failure(request, "not_configured")
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            f"the API is closed: no way in is configured; {auth.methods()}",
            headers=CHALLENGE,
        )
    try:
        principal = await auth.authenticate(request)
    except AuthFailure as err:
        count_failure(request, err.reason)
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, f"not authenticated: {err}", headers=CHALLENGE
        ) from None
    if principal is None:
        count_failure(request, "missing")
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "not authenticated: send 'Authorization: Bearer <token>' (a named token, "
            "BALLAST_API_TOKEN or an OIDC token)",
            headers=CHALLENGE,
        )
    return principal


def require(role: Role, *or_roles: Role) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency: the request's principal, which must have ``role`` or one of
    ``or_roles`` (else 401/403)."""
    roles = (role, *or_roles)

    async def dependency(request: Request) -> Principal:
        principal = await authenticate(request)
        if not any(principal.has(each) for each in roles):
            count_failure(request, "forbidden")
            needed = " or ".join(each.value for each in roles)
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"{principal.name} lacks the {needed} role for this endpoint",
            )
        request.state.principal = principal
        return principal

    dependency.__name__ = "require_" + "_or_".join(each.value for each in roles)
    return dependency


def actor_of(principal: Principal, claimed: str | None = None) -> Actor:
    """The actor of a request whose body named ``claimed`` (or nobody).

    Absent, or naming this principal or its person: the principal acts. Naming anyone else
    needs the ``impersonate`` role; ``ballast`` and group handles never pass.
    """
    own = Actor(principal.name, principal.method, person=principal.person)
    if claimed is None or claimed in (principal.name, principal.person):
        return own
    if not principal.has(Role.IMPERSONATE):
        raise PolicyError(
            f"{principal.name} may not act as {claimed!r}: the actor is whoever authenticated. "
            "Leave 'actor' out, or use that person's own token"
        )
    return own.impersonating(claimed)


def acting(principal: Principal, claimed: str | None) -> Actor:
    """The actor of a write; 403 when the principal may not act as ``claimed``."""
    try:
        return actor_of(principal, claimed)
    except PolicyError as err:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(err)) from None
