"""Find the principal of an HTTP request: bearer token (named, ``BALLAST_API_TOKEN``, OIDC)
or a trusted proxy's header. Never logs or returns a secret."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.requests import HTTPConnection

from bot.auth.config import AuthConfig
from bot.auth.methods import AuthMethod
from bot.auth.principal import Principal
from bot.auth.roles import SERVICE_API_ROLES
from bot.auth.tokens import find_token, same_secret

API_PRINCIPAL = "api"


class AuthFailure(Exception):
    """Authentication was attempted and failed; ``reason`` is a short label for metrics."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


def bearer_token(request: HTTPConnection) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


# A JWT verifier: token → principal, or AuthFailure. (bot.auth.oidc)
JwtVerifier = Callable[[str], Awaitable[Principal]]
# A proxy: request → principal when it came through the trusted proxy, else None.
ProxyCheck = Callable[[HTTPConnection], Awaitable[Principal | None]]


@dataclass(slots=True)
class Authenticator:
    config: AuthConfig
    api_token: str | None = None
    oidc: JwtVerifier | None = None
    proxy: ProxyCheck | None = None

    @property
    def configured(self) -> bool:
        """Is there any way in? With none, every API call is refused."""
        return bool(
            self.api_token or self.config.tokens or self.oidc is not None or self.proxy is not None
        )

    def methods(self) -> str:
        return "set BALLAST_API_TOKEN or add auth.tokens (ballast tokens create) to ballast.yaml"

    async def authenticate(self, request: HTTPConnection) -> Principal | None:
        """The principal, None when the request carries no credentials, AuthFailure when it
        carries wrong ones."""
        token = bearer_token(request)
        if token is not None:
            return await self._bearer(token)
        if self.proxy is not None:
            return await self.proxy(request)
        return None

    async def _bearer(self, token: str) -> Principal:
        entry = find_token(token, self.config.tokens)
        if entry is not None:
            return Principal(
                entry.name, AuthMethod.TOKEN, frozenset(entry.roles), person=entry.slack_user
            )
        if self.api_token is not None and same_secret(token, self.api_token):
            return Principal(API_PRINCIPAL, AuthMethod.API_TOKEN, SERVICE_API_ROLES)
        if self.oidc is not None and token.count(".") == 2:
            return await self.oidc(token)
        raise AuthFailure("unknown_token", "the bearer token is not one this server knows")
