"""A trusted authenticating proxy (oauth2-proxy) names the person in a header. Believed only
when enabled and only from the proxy's own addresses: anyone else can send any header."""

from __future__ import annotations

import ipaddress

from starlette.requests import HTTPConnection

from bot.auth.config import ProxyConfig
from bot.auth.methods import AuthMethod
from bot.auth.people import PersonDirectory
from bot.auth.principal import Principal


class TrustedProxy:
    def __init__(self, config: ProxyConfig, people: PersonDirectory) -> None:
        self._config = config
        self._people = people
        self._networks = [ipaddress.ip_network(c, strict=False) for c in config.trusted_addresses]

    def trusts(self, peer: str | None) -> bool:
        if peer is None:
            return False
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return False
        return any(address in network for network in self._networks)

    async def __call__(self, request: HTTPConnection) -> Principal | None:
        if not self.trusts(request.client.host if request.client else None):
            return None
        for header in self._config.headers:
            email = request.headers.get(header, "").strip()
            if email:
                person = await self._people.person(email)
                roles = frozenset(self._config.roles)
                return Principal(email, AuthMethod.PROXY, roles, person=person)
        return None
