"""People signed in by email (OIDC, a proxy) → their Slack user id, via users.lookupByEmail."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any


def slack_email_lookup(client: Any) -> Callable[[str], Awaitable[str | None]]:
    """``users.lookupByEmail`` through slack_sdk's AsyncWebClient (``users:read.email``)."""

    async def lookup(email: str) -> str | None:
        from slack_sdk.errors import SlackApiError

        try:
            response = await client.users_lookupByEmail(email=email)
        except SlackApiError as err:
            if err.response.get("error") == "users_not_found":
                return None
            raise
        user = response.get("user") or {}
        return str(user["id"]) if user.get("id") else None

    return lookup
