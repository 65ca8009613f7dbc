"""Who is in an owner group, from Slack's user groups (``usergroups.users.list``), cached.

``usergroups.users.list`` is Tier 2 (about 20 calls a minute), so members are cached per group
for a few minutes; groups listed under ``teams:`` in ballast.yaml are added on top, so
approvals also work for people Slack does not know (API and CLI actors).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.execution.policy import StaticDirectory

log = logging.getLogger(__name__)
_GROUP_ID = re.compile(r"^S[A-Z0-9]{2,}\Z")  # a group named by its Slack id rather than handle


class SlackDirectory:
    def __init__(
        self,
        client: AsyncWebClient,
        group_ids: Mapping[str, str],
        static: StaticDirectory,
        *,
        ttl_seconds: float = 300.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._group_ids = dict(group_ids)
        self._static = static
        self._ttl = ttl_seconds
        self._monotonic = monotonic
        self._cache: dict[str, tuple[float, frozenset[str]]] = {}

    async def members(self, group: str) -> frozenset[str]:
        extra = await self._static.members(group)
        group_id = self._group_ids.get(group) or (group if _GROUP_ID.fullmatch(group) else None)
        if group_id is None:
            return extra
        now = self._monotonic()
        cached = self._cache.get(group_id)
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1] | extra
        try:
            response = await self._client.usergroups_users_list(usergroup=group_id)
            users = frozenset(str(user) for user in response.get("users") or [])
        except SlackApiError as err:
            log.warning("usergroups.users.list for %s failed: %s", group, err.response.get("error"))
            # A stale answer beats locking every owner out while Slack is unhappy.
            return (cached[1] if cached else frozenset()) | extra
        self._cache[group_id] = (now, users)
        return users | extra
