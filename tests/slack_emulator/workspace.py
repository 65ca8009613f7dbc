"""The state of the emulated workspace and what each Web API method does to it.

Success and error shapes come from each method's page (docs.slack.dev/reference/methods/<name>):
errors are HTTP 200 ``{"ok": false, "error": "<code>"}`` with the documented codes
(``channel_not_found``, ``message_not_found``, ``cant_update_message``, ``msg_too_long``,
``no_text``, ``invalid_blocks``, ``invalid_blocks_format``, ``name_taken``, ``user_not_found``,
``no_such_subteam``, ``already_in_channel``, ``user_not_in_channel``, ``file_not_found``,
``thread_not_found``, ``not_in_channel``, ``invalid_cursor`` …).

Message metadata (docs.slack.dev/messaging/message-metadata) is kept with each post and shown
by ``conversations.history`` / ``conversations.replies`` only with ``include_all_metadata``:
what Ballast's delivery reads to tell whether a post whose answer was lost reached Slack.
Not thread-safe by itself: the server calls it under one lock.
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import itertools
import json
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .block_kit import validate_blocks
from .payloads import SlackChannel, SlackTeam, SlackUser

__all__ = ["MAX_TEXT", "SlackError", "StoredMessage", "Workspace"]

MAX_TEXT = 40_000  # chat.postMessage: "Provide no more than 40,000 characters"
CHANNEL_NAME = re.compile(r"^[a-z0-9_-]+$")

Args = Mapping[str, Any]
Body = dict[str, Any]


class SlackError(Exception):
    """A documented ``ok: false`` answer; ``extra`` joins ``error`` in the body."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra


@dataclass
class StoredMessage:
    """A message as it stands now; ``edits`` keeps each earlier version."""

    channel: str
    ts: str
    text: str
    user: str
    blocks: list[dict[str, Any]] = field(default_factory=list)
    attachments: list[Any] = field(default_factory=list)
    bot_id: str | None = None
    app_id: str | None = None
    team: str = ""
    thread_ts: str | None = None
    files: list[dict[str, Any]] = field(default_factory=list)
    parent_missing: bool = False
    edits: list[dict[str, Any]] = field(default_factory=list)
    metadata: dict[str, Any] | None = None

    def message_object(self) -> Body:
        """The ``message`` Slack returns for it (chat.postMessage sample response)."""
        body: Body = {"type": "message", "text": self.text, "user": self.user, "ts": self.ts}
        if self.bot_id:
            body.update(bot_id=self.bot_id, app_id=self.app_id)
        body["team"] = self.team
        if self.blocks:
            body["blocks"] = copy.deepcopy(self.blocks)
        if self.attachments:
            body["attachments"] = copy.deepcopy(self.attachments)
        if self.files:
            body["files"] = copy.deepcopy(self.files)
        if self.thread_ts:
            body["thread_ts"] = self.thread_ts
        return body

    def snapshot(self) -> Body:
        """What tests inspect: the message object plus its channel and how often it was edited."""
        body = {**self.message_object(), "channel": self.channel, "edits": len(self.edits)}
        if self.parent_missing:  # Slack documents no error for a thread_ts that matches nothing
            body["parent_missing"] = True
        return body


@dataclass
class _Channel:
    id: str
    name: str
    is_private: bool
    members: set[str] | None
    created: int
    creator: str

    def object(self, team: SlackTeam) -> Body:
        """The ``channel`` of conversations.create / conversations.invite answers."""
        return {
            "id": self.id,
            "name": self.name,
            "is_channel": not self.is_private,
            "is_group": self.is_private,
            "is_im": False,
            "is_mpim": False,
            "is_private": self.is_private,
            "created": self.created,
            "creator": self.creator,
            "is_archived": False,
            "is_general": False,
            "name_normalized": self.name,
            "is_shared": False,
            "is_member": self.members is None or team.bot_user_id in self.members,
            "topic": {"value": "", "creator": "", "last_set": 0},
            "purpose": {"value": "", "creator": "", "last_set": 0},
            "previous_names": [],
        }


class Workspace:
    """Channels, users, user groups, messages, files; one ``handle()`` per Web API call."""

    def __init__(
        self,
        *,
        team: SlackTeam,
        channels: Iterable[SlackChannel],
        users: Iterable[SlackUser],
        usergroups: Mapping[str, Iterable[str]],
        truncate_long_text: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.team = team
        self.truncate_long_text = truncate_long_text
        self._clock = clock
        self._ids = itertools.count(1)
        self._last_micros = 0
        self.upload_root = ""
        self.users: dict[str, SlackUser] = {}
        self.channels: dict[str, _Channel] = {}
        self.usergroups: dict[str, list[str]] = {}
        self.messages: dict[str, dict[str, StoredMessage]] = {}
        self.ephemerals: list[Body] = []
        self.files: dict[str, Body] = {}
        self.add_user(SlackUser(team.bot_user_id, team.bot_name, team_id=team.id, is_bot=True))
        for user in users:
            self.add_user(user)
        for channel in channels:
            self.add_channel(channel)
        for group, members in usergroups.items():
            self.usergroups[group] = list(members)

    # -- set-up ---------------------------------------------------------------------------

    def add_user(self, user: SlackUser) -> None:
        self.users[user.id] = user

    def add_channel(self, channel: SlackChannel) -> None:
        members = None if channel.members is None else {*channel.members}
        created = int(self._clock())
        self.channels[channel.id] = _Channel(
            channel.id, channel.name, channel.is_private, members, created, self.team.bot_user_id
        )
        self.messages.setdefault(channel.id, {})

    def post_as(self, user_id: str, channel: str, text: str, thread_ts: str | None = None) -> str:
        """A message written by someone else (the bot cannot update it); returns its ts."""
        stored = StoredMessage(
            self._channel(channel).id, self._ts(), text, user_id, team=self.team.id
        )
        stored.thread_ts = thread_ts
        self.messages[stored.channel][stored.ts] = stored
        return stored.ts

    # -- helpers --------------------------------------------------------------------------

    def _ts(self) -> str:
        micros = max(int(self._clock() * 1_000_000), self._last_micros + 1)
        self._last_micros = micros
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}0EMU{next(self._ids):05d}"

    def _channel(self, ref: object, error: str = "channel_not_found") -> _Channel:
        name = str(ref or "").removeprefix("#")
        if name in self.channels:
            return self.channels[name]
        for channel in self.channels.values():
            if channel.name == name:
                return channel
        raise SlackError(error)

    def _user(self, user_id: object) -> SlackUser:
        user = self.users.get(str(user_id or ""))
        if user is None:
            raise SlackError("user_not_found")
        return user

    def _content(self, args: Args, *, update: bool = False) -> tuple[str | None, list[Any] | None]:
        """Validated ``text`` and ``blocks`` of a message-writing call."""
        blocks = args.get("blocks")
        if isinstance(blocks, str):
            try:
                blocks = json.loads(blocks)
            except ValueError:
                raise SlackError("invalid_blocks_format") from None
        if blocks is not None and not isinstance(blocks, list):
            raise SlackError("invalid_blocks_format")
        text = args.get("text")
        if text is not None:
            text = str(text)
        if not update and not text and not blocks and not args.get("attachments"):
            raise SlackError("no_text")
        if text is not None and len(text) > MAX_TEXT:
            if not self.truncate_long_text:
                raise SlackError("msg_too_long")
            text = text[:MAX_TEXT]
        if blocks:
            errors = validate_blocks(blocks)
            if errors:
                messages = [f"[ERROR] {e}" for e in errors]
                raise SlackError(
                    "invalid_blocks", errors=errors, response_metadata={"messages": messages}
                )
            blocks = [_with_block_id(i, block) for i, block in enumerate(blocks)]
        return text, blocks

    # -- methods --------------------------------------------------------------------------

    def auth_test(self, args: Args) -> Body:
        return {
            "url": f"https://{self.team.domain}.slack.com/",
            "team": self.team.name,
            "user": self.team.bot_name,
            "team_id": self.team.id,
            "user_id": self.team.bot_user_id,
            "bot_id": self.team.bot_id,
            "is_enterprise_install": False,
        }

    def chat_post_message(self, args: Args) -> Body:
        channel = self._channel(args.get("channel"))
        text, blocks = self._content(args)
        thread_ts = args.get("thread_ts") or None
        stored = StoredMessage(
            channel.id,
            self._ts(),
            text or "",
            self.team.bot_user_id,
            blocks=blocks or [],
            attachments=_json_list(args.get("attachments")),
            bot_id=self.team.bot_id,
            app_id=self.team.app_id,
            team=self.team.id,
            thread_ts=thread_ts,
            parent_missing=bool(thread_ts) and thread_ts not in self.messages[channel.id],
            metadata=_metadata(args.get("metadata")),
        )
        self.messages[channel.id][stored.ts] = stored
        return {"channel": channel.id, "ts": stored.ts, "message": stored.message_object()}

    def chat_update(self, args: Args) -> Body:
        channel = self._channel(args.get("channel"))
        stored = self.messages[channel.id].get(str(args.get("ts") or ""))
        if stored is None:
            raise SlackError("message_not_found")
        if stored.user != self.team.bot_user_id:
            raise SlackError("cant_update_message")
        text, blocks = self._content(args, update=True)
        stored.edits.append(stored.message_object())
        if text is not None:
            stored.text = text
        if blocks is not None:  # omitted: "the message's previous blocks will be retained"
            stored.blocks = blocks
        if "attachments" in args:
            stored.attachments = _json_list(args.get("attachments"))
        return {
            "channel": channel.id,
            "ts": stored.ts,
            "text": stored.text,
            "message": stored.message_object(),
        }

    def chat_post_ephemeral(self, args: Args) -> Body:
        channel = self._channel(args.get("channel"))
        user = self._user(args.get("user"))
        if channel.members is not None and user.id not in channel.members:
            raise SlackError("user_not_in_channel")
        text, blocks = self._content(args)
        message_ts = self._ts()
        self.ephemerals.append(
            {
                "channel": channel.id,
                "user": user.id,
                "text": text or "",
                "blocks": blocks or [],
                "thread_ts": args.get("thread_ts"),
                "message_ts": message_ts,
            }
        )
        return {"message_ts": message_ts}

    def conversations_create(self, args: Args) -> Body:
        name = str(args.get("name") or "")
        if not name:
            raise SlackError("invalid_name_required")
        if len(name) > 80:
            raise SlackError("invalid_name_maxlength")
        if not CHANNEL_NAME.match(name):
            raise SlackError("invalid_name_specials")
        if not name.strip("-_"):
            raise SlackError("invalid_name_punctuation")
        if any(channel.name == name for channel in self.channels.values()):
            raise SlackError("name_taken")
        is_private = _truthy(args.get("is_private"))
        channel_id = self._new_id("G" if is_private else "C")
        self.add_channel(
            SlackChannel(channel_id, name, is_private, frozenset({self.team.bot_user_id}))
        )
        return {"channel": self.channels[channel_id].object(self.team)}

    def conversations_invite(self, args: Args) -> Body:
        channel = self._channel(args.get("channel"))
        users = args.get("users")
        ids = users if isinstance(users, list) else str(users or "").split(",")
        ids = [str(u).strip() for u in ids if str(u).strip()]
        if not ids:
            raise SlackError("no_user")
        if channel.members is None:
            channel.members = set(self.users)
        failed: list[tuple[str, str]] = []
        for user_id in ids:
            if user_id == self.team.bot_user_id:
                failed.append((user_id, "cant_invite_self"))
            elif user_id not in self.users:
                failed.append((user_id, "user_not_found"))
            elif user_id in channel.members:
                failed.append((user_id, "already_in_channel"))
            else:
                channel.members.add(user_id)
        if failed:
            errors = [{"user": user, "ok": False, "error": error} for user, error in failed]
            raise SlackError(failed[0][1], errors=errors)
        return {"channel": channel.object(self.team)}

    def usergroups_users_list(self, args: Args) -> Body:
        group = str(args.get("usergroup") or "")
        if group not in self.usergroups:
            raise SlackError("no_such_subteam")
        return {"users": list(self.usergroups[group])}

    def users_info(self, args: Args) -> Body:
        return {"user": self._user(args.get("user")).user_object()}

    def files_get_upload_url_external(self, args: Args) -> Body:
        filename = str(args.get("filename") or "")
        try:
            length = int(args.get("length") or 0)
        except (TypeError, ValueError):
            raise SlackError("invalid_arguments") from None
        if not filename or length <= 0:
            raise SlackError("missing_argument")
        file_id = self._new_id("F")
        self.files[file_id] = {"id": file_id, "name": filename, "length": length, "data": None}
        return {"upload_url": f"{self.upload_root}/upload/v1/{file_id}", "file_id": file_id}

    def receive_upload(self, file_id: str, data: bytes) -> bool:
        """Bytes posted to an upload URL; False if the URL was never handed out."""
        if file_id not in self.files:
            return False
        self.files[file_id]["data"] = data
        return True

    def files_complete_upload_external(self, args: Args) -> Body:
        entries = _json_list(args.get("files"))
        if not entries:
            raise SlackError("invalid_arguments")
        done = []
        for entry in entries:
            stored = self.files.get(str(entry.get("id")))
            if stored is None or stored["data"] is None:
                raise SlackError("file_not_found")
            stored["title"] = entry.get("title") or stored["name"]
            done.append(
                {
                    "id": stored["id"],
                    "name": stored["name"],
                    "title": stored["title"],
                    "size": len(stored["data"]),
                }
            )
        channel_id = args.get("channel_id") or args.get("channels")
        if channel_id:
            channel = self._channel(channel_id, error="invalid_channel")
            stored_message = StoredMessage(
                channel.id,
                self._ts(),
                str(args.get("initial_comment") or ""),
                self.team.bot_user_id,
                bot_id=self.team.bot_id,
                app_id=self.team.app_id,
                team=self.team.id,
                thread_ts=args.get("thread_ts") or None,
                files=done,
            )
            self.messages[channel.id][stored_message.ts] = stored_message
        return {"files": done}

    def conversations_history(self, args: Args) -> Body:
        """Top-level messages (and thread parents), newest first."""
        channel = self._readable(args.get("channel"))
        found = [
            message
            for message in self.messages[channel.id].values()
            if message.thread_ts in (None, message.ts) and _in_window(message.ts, args)
        ]
        found.sort(key=lambda m: float(m.ts), reverse=True)
        return self._page(found, args, default_limit=100)

    def conversations_replies(self, args: Args) -> Body:
        """The thread's parent first, then its replies oldest first."""
        channel = self._readable(args.get("channel"))
        thread = str(args.get("ts") or "")
        parent = self.messages[channel.id].get(thread)
        if parent is None or parent.thread_ts not in (None, thread):
            raise SlackError("thread_not_found")
        replies = [
            message
            for message in self.messages[channel.id].values()
            if message.thread_ts == thread and message.ts != thread and _in_window(message.ts, args)
        ]
        replies.sort(key=lambda m: float(m.ts))
        return self._page([parent, *replies], args, default_limit=1000)

    def _readable(self, ref: object) -> _Channel:
        channel = self._channel(ref)
        if channel.members is not None and self.team.bot_user_id not in channel.members:
            raise SlackError("not_in_channel")
        return channel

    def _page(self, found: list[StoredMessage], args: Args, *, default_limit: int) -> Body:
        start = _cursor_offset(args.get("cursor"))
        limit = max(1, min(int(args.get("limit") or default_limit), 999))
        page = found[start : start + limit]
        more = start + limit < len(found)
        shown = []
        for message in page:
            body = message.message_object()
            if message.metadata is not None and _truthy(args.get("include_all_metadata")):
                body["metadata"] = copy.deepcopy(message.metadata)
            shown.append(body)
        cursor = base64.b64encode(f"next:{start + limit}".encode()).decode() if more else ""
        return {
            "messages": shown,
            "has_more": more,
            "pin_count": 0,
            "response_metadata": {"next_cursor": cursor},
        }

    HANDLERS: Mapping[str, Callable[[Workspace, Args], Body]] = {
        "auth.test": auth_test,
        "chat.postMessage": chat_post_message,
        "chat.update": chat_update,
        "chat.postEphemeral": chat_post_ephemeral,
        "conversations.create": conversations_create,
        "conversations.invite": conversations_invite,
        "conversations.history": conversations_history,
        "conversations.replies": conversations_replies,
        "usergroups.users.list": usergroups_users_list,
        "users.info": users_info,
        "files.getUploadURLExternal": files_get_upload_url_external,
        "files.completeUploadExternal": files_complete_upload_external,
    }

    def channel_key(self, args: Args) -> str | None:
        """The channel ID a call is about (for per-channel limits), or the raw argument."""
        ref = args.get("channel") or args.get("channel_id")
        if not ref:
            return None
        try:
            return self._channel(ref).id
        except SlackError:
            return str(ref)

    def handle(self, method: str, args: Args) -> Body:
        """The full JSON body of the answer, ``ok`` included."""
        handler = self.HANDLERS.get(method)
        if handler is None:
            return {"ok": False, "error": "unknown_method"}
        try:
            return {"ok": True, **handler(self, args)}
        except SlackError as exc:
            return {"ok": False, "error": exc.error, **exc.extra}


def _truthy(value: object) -> bool:
    return value is True or str(value).lower() in ("1", "true")


def _metadata(value: object) -> dict[str, Any] | None:
    """``metadata`` as sent (a JSON string or an object): ``event_type`` and ``event_payload``."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise SlackError("invalid_metadata_format") from None
    if value is None:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("event_type"), str):
        raise SlackError("invalid_metadata_schema")
    return {"event_type": value["event_type"], "event_payload": value.get("event_payload") or {}}


def _in_window(ts: str, args: Args) -> bool:
    """``oldest``/``latest`` bound the messages; ``inclusive`` keeps those exactly at a bound."""
    value = float(ts)
    inclusive = _truthy(args.get("inclusive"))
    oldest, latest = args.get("oldest"), args.get("latest")
    if oldest not in (None, ""):
        bound = float(str(oldest))
        if value < bound or (value == bound and not inclusive):
            return False
    if latest not in (None, ""):
        bound = float(str(latest))
        if value > bound or (value == bound and not inclusive):
            return False
    return True


def _cursor_offset(cursor: object) -> int:
    if not cursor:
        return 0
    try:
        kind, _, offset = base64.b64decode(str(cursor), validate=True).decode().partition(":")
        if kind == "next" and offset.isdigit():
            return int(offset)
    except (binascii.Error, UnicodeDecodeError):
        pass
    raise SlackError("invalid_cursor")


def _json_list(value: object) -> list[Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise SlackError("invalid_arguments") from None
    return list(value) if isinstance(value, list) else []


def _with_block_id(index: int, block: dict[str, Any]) -> dict[str, Any]:
    """Slack fills in a ``block_id`` when the app gave none ("a block_id will be generated")."""
    if "block_id" in block:
        return copy.deepcopy(block)
    seed = json.dumps([index, block], sort_keys=True).encode()
    digest = hashlib.sha1(seed).hexdigest()
    return {**copy.deepcopy(block), "block_id": digest[:5]}
