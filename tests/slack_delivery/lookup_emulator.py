"""The shared Slack emulator plus the two read methods the delivery's crash recovery uses.

``conversations.history`` and ``conversations.replies`` with ``include_all_metadata``, and
chat.postMessage keeping the message ``metadata`` (docs.slack.dev/messaging/message-metadata).
Shapes from the methods' pages: ``messages`` newest first for history, parent first for
replies, ``has_more`` and ``response_metadata.next_cursor`` for paging. Drop this file once
``tests/slack_emulator`` answers these itself.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from tests.slack_emulator import SlackEmulator
from tests.slack_emulator.workspace import Args, Body, StoredMessage, Workspace


def _truthy(value: object) -> bool:
    return value is True or str(value).lower() in ("1", "true")


class LookupWorkspace(Workspace):
    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.metadata: dict[str, dict[str, Any]] = {}

    def _post_with_metadata(self, args: Args) -> Body:
        body = Workspace.chat_post_message(self, args)
        metadata = args.get("metadata")
        if isinstance(metadata, str):
            metadata = json.loads(metadata)
        if isinstance(metadata, dict):
            self.metadata[body["ts"]] = metadata
        return body

    def _shown(self, message: StoredMessage, args: Args) -> Body:
        shown = message.message_object()
        if _truthy(args.get("include_all_metadata")) and message.ts in self.metadata:
            shown["metadata"] = self.metadata[message.ts]
        return shown

    def _page(self, found: list[StoredMessage], args: Args) -> Body:
        start = int(args.get("cursor") or 0)
        limit = int(args.get("limit") or 100)
        page = found[start : start + limit]
        more = start + limit < len(found)
        return {
            "messages": [self._shown(message, args) for message in page],
            "has_more": more,
            "response_metadata": {"next_cursor": str(start + limit) if more else ""},
        }

    def _history(self, args: Args) -> Body:
        channel = self._channel(args.get("channel"))
        oldest = float(args.get("oldest") or 0)
        found = [
            message
            for message in self.messages[channel.id].values()
            if message.thread_ts in (None, message.ts) and float(message.ts) >= oldest
        ]
        return self._page(sorted(found, key=lambda m: float(m.ts), reverse=True), args)

    def _replies(self, args: Args) -> Body:
        channel = self._channel(args.get("channel"))
        thread = str(args.get("ts") or "")
        if thread not in self.messages[channel.id]:
            from tests.slack_emulator.workspace import SlackError

            raise SlackError("thread_not_found")
        oldest = float(args.get("oldest") or 0)
        found = [
            message
            for message in self.messages[channel.id].values()
            if message.ts == thread or (message.thread_ts == thread and float(message.ts) >= oldest)
        ]
        return self._page(sorted(found, key=lambda m: float(m.ts)), args)

    HANDLERS: Mapping[str, Callable[[Workspace, Args], Body]] = {  # type: ignore[assignment]
        **Workspace.HANDLERS,
        "chat.postMessage": _post_with_metadata,
        "conversations.history": _history,
        "conversations.replies": _replies,
    }


class LookupEmulator(SlackEmulator):
    def _new_workspace(self) -> Workspace:
        channels, users, usergroups, truncate = self._setup
        return LookupWorkspace(
            team=self.team,
            channels=channels,
            users=users,
            usergroups=usergroups,
            truncate_long_text=truncate,
        )
