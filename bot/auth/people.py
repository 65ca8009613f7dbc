"""Email → Slack user id, for people who sign in through OIDC or a proxy: an explicit map
first, then Slack's ``users.lookupByEmail`` (cached, misses too, so a stranger costs one call)."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping

log = logging.getLogger(__name__)

EmailLookup = Callable[[str], Awaitable[str | None]]


class PersonDirectory:
    def __init__(
        self,
        explicit: Mapping[str, str],
        lookup: EmailLookup | None = None,
        *,
        ttl: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._explicit = {email.lower(): user for email, user in explicit.items()}
        self._lookup = lookup
        self._ttl = ttl
        self._clock = clock
        self._cache: dict[str, tuple[float, str | None]] = {}

    async def person(self, email: str) -> str | None:
        key = email.strip().lower()
        if key in self._explicit:
            return self._explicit[key]
        if self._lookup is None:
            return None
        cached = self._cache.get(key)
        if cached is not None and self._clock() - cached[0] < self._ttl:
            return cached[1]
        try:
            user = await self._lookup(key)
        except Exception as err:  # Slack down: no person now, ask again next time
            log.warning(
                "users.lookupByEmail failed (%s); acting without a person", type(err).__name__
            )
            return None
        self._cache[key] = (self._clock(), user)
        return user
