"""OIDC bearer tokens: a JWT from the identity provider, verified with PyJWT against the
provider's published keys (JWKS), its issuer, audience and expiry. Only asymmetric algorithms
from ``auth.oidc.algorithms``; ``alg: none`` and HMAC never pass."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx
import jwt

from bot.auth.authenticator import AuthFailure
from bot.auth.config import OidcConfig
from bot.auth.methods import AuthMethod
from bot.auth.people import PersonDirectory
from bot.auth.principal import Principal

REFRESH_AT_MOST_EVERY = 30.0  # seconds between JWKS fetches caused by an unknown key id
KEYS_TTL = 3600.0


class OidcVerifier:
    def __init__(
        self,
        config: OidcConfig,
        http: httpx.AsyncClient,
        people: PersonDirectory,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._config = config
        self._http = http
        self._people = people
        self._clock = clock
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()

    async def __call__(self, token: str) -> Principal:
        claims = await self._verify(token)
        value = claims.get(self._config.claim)
        if not isinstance(value, str) or not value:
            raise AuthFailure("no_claim", f"the token has no {self._config.claim!r} claim")
        person = await self._people.person(value)
        return Principal(value, AuthMethod.OIDC, frozenset(self._config.roles), person=person)

    async def _verify(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise AuthFailure("bad_token", "the bearer token is not a JWT") from None
        alg = str(header.get("alg", ""))
        if alg not in self._config.algorithms:
            raise AuthFailure("bad_algorithm", f"JWT algorithm {alg!r} is not accepted")
        key = await self._key(str(header.get("kid", "")))
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=self._config.algorithms,
                audience=self._config.audience,
                issuer=self._config.issuer,
                leeway=self._config.leeway_seconds,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise AuthFailure("expired", "the JWT has expired") from None
        except jwt.InvalidAudienceError:
            raise AuthFailure("wrong_audience", "the JWT is for another audience") from None
        except jwt.InvalidIssuerError:
            raise AuthFailure("wrong_issuer", "the JWT is from another issuer") from None
        except jwt.PyJWTError as err:
            raise AuthFailure("bad_token", f"the JWT is invalid ({type(err).__name__})") from None
        return claims

    async def _key(self, kid: str) -> jwt.PyJWK:
        key = self._keys.get(kid)
        now = self._clock()
        stale = self._fetched_at is None or now - self._fetched_at > KEYS_TTL
        if key is not None and not stale:
            return key
        async with self._lock:
            may_refetch = self._fetched_at is None or now - self._fetched_at > REFRESH_AT_MOST_EVERY
            if (key is None or stale) and may_refetch:
                await self._fetch()
        key = self._keys.get(kid)
        if key is None:
            raise AuthFailure("unknown_key", "the JWT's key id is not in the provider's JWKS")
        return key

    async def _fetch(self) -> None:
        try:
            response = await self._http.get(self._config.jwks_url, timeout=5.0)
            response.raise_for_status()
            keys = jwt.PyJWKSet.from_dict(response.json()).keys
        except (httpx.HTTPError, ValueError, jwt.PyJWTError) as err:
            raise AuthFailure(
                "jwks_unavailable", f"cannot read the JWKS ({type(err).__name__})"
            ) from None
        self._keys = {str(k.key_id): k for k in keys if k.key_id}
        self._fetched_at = self._clock()
