"""Notifications through Slack: escalations, failure reports and the ``notify`` action.

Goes through the outbox like everything else, so a notification is sent once even when the
process restarts. User ids get a direct message; ``#channel`` or channel ids get a message
there; ``@handles`` are mentioned in the incidents channel (as a real group mention when the
group id is known). ``text`` is plain text (a runbook's notify text carries label values), so
it is escaped: the only mentions are those built here from ``to``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from actions.errors import FinalError
from bot.slack.outbox import SlackOutbox
from bot.slack.text import escape, group_mention
from bot.store.database import Database

_USER = re.compile(r"^[UW][A-Z0-9]{2,}\Z")
_CHANNEL_ID = re.compile(r"^[CG][A-Z0-9]{2,}\Z")


class SlackMessenger:
    def __init__(
        self,
        db: Database,
        outbox: SlackOutbox,
        *,
        fallback_channel: str | None,
        group_ids: Mapping[str, str],
        wake: Callable[[], None],
    ) -> None:
        self._db = db
        self._outbox = outbox
        self._fallback = fallback_channel
        self._groups = dict(group_ids)
        self._wake = wake

    async def notify(self, to: list[str], text: str, *, idempotency_key: str) -> dict[str, Any]:
        body = escape(text)
        handles = [who for who in to if who.startswith("@")]
        targets: list[tuple[str, str]] = []
        for who in to:
            if _USER.match(who) or _CHANNEL_ID.match(who):
                targets.append((who, body))
            elif who.startswith("#"):
                targets.append((who.lstrip("#"), body))
        if handles:
            if self._fallback is None:
                raise FinalError(
                    f"cannot notify {', '.join(handles)}: no channel to mention them in; set "
                    "BALLAST_SLACK_CHANNEL"
                )
            mentions = " ".join(group_mention(h, self._groups) for h in handles)
            targets.append((self._fallback, f"{mentions} {body}"))
        async with self._db.transaction() as session:
            for index, (channel, body) in enumerate(targets):
                await self._outbox.notify(
                    session, channel, {"text": body}, f"{idempotency_key}:{index}"
                )
        self._wake()
        return {"queued": [channel for channel, _ in targets]}
