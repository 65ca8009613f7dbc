"""Who is who in the emulated workspace, and the payloads Slack sends to an app's Request URL.

Shapes follow Slack's documentation:

- slash command: an ``application/x-www-form-urlencoded`` body with ``token``, ``team_id``,
  ``team_domain``, ``channel_id``, ``channel_name``, ``user_id``, ``user_name``, ``command``,
  ``text``, ``api_app_id``, ``is_enterprise_install``, ``response_url``, ``trigger_id``
  (docs.slack.dev/interactivity/implementing-slash-commands);
- ``block_actions``: the JSON in the ``payload`` form field, with ``type``, ``user``,
  ``api_app_id``, ``token``, ``container``, ``trigger_id``, ``team``, ``channel``, ``message``,
  ``state``, ``response_url``, ``actions`` (docs.slack.dev/reference/interaction-payloads/
  block_actions-payload);
- Events API: the ``event_callback`` envelope with ``token``, ``team_id``, ``api_app_id``,
  ``event``, ``event_id``, ``event_time``, ``authorizations``, and ``url_verification``
  (docs.slack.dev/apis/events-api).
"""

from __future__ import annotations

import itertools
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DEFAULT_TEAM",
    "SlackChannel",
    "SlackTeam",
    "SlackUser",
    "app_mention_event",
    "block_actions_payload",
    "click",
    "event_callback",
    "find_button",
    "slash_command_form",
    "url_verification",
]

_counter = itertools.count(1)


@dataclass(frozen=True)
class SlackTeam:
    """The workspace and the installed app's bot."""

    id: str = "T0BALLAST1"
    domain: str = "ballast-test"
    name: str = "Ballast Test"
    app_id: str = "A0BALLAST1"
    bot_user_id: str = "U0BALLAST1"
    bot_id: str = "B0BALLAST1"
    bot_name: str = "ballast"
    verification_token: str = "verification-token-deprecated"


DEFAULT_TEAM = SlackTeam()


@dataclass(frozen=True)
class SlackUser:
    """A member of the workspace, as ``users.info`` describes it."""

    id: str
    name: str
    real_name: str = ""
    team_id: str = DEFAULT_TEAM.id
    is_bot: bool = False
    deleted: bool = False

    def user_object(self) -> dict[str, Any]:
        """The ``user`` of a users.info answer (docs.slack.dev/reference/methods/users.info)."""
        real_name = self.real_name or self.name
        return {
            "id": self.id,
            "team_id": self.team_id,
            "name": self.name,
            "deleted": self.deleted,
            "real_name": real_name,
            "tz": "Etc/UTC",
            "tz_offset": 0,
            "is_admin": False,
            "is_owner": False,
            "is_bot": self.is_bot,
            "is_app_user": False,
            "updated": 1700000000,
            "profile": {
                "real_name": real_name,
                "display_name": self.name,
                "email": f"{self.name}@example.com",
                "team": self.team_id,
            },
        }


@dataclass(frozen=True)
class SlackChannel:
    """A conversation; ``members=None`` means every user of the workspace is in it."""

    id: str
    name: str
    is_private: bool = False
    members: frozenset[str] | None = None


def _trigger_id() -> str:
    return f"{int(time.time())}.{next(_counter)}.{secrets.token_hex(16)}"


def _response_url(kind: str, team: SlackTeam) -> str:
    return f"https://hooks.slack.com/{kind}/{team.id}/{next(_counter)}/{secrets.token_urlsafe(18)}"


def slash_command_form(
    command: str,
    text: str,
    *,
    user: SlackUser,
    channel: SlackChannel,
    team: SlackTeam = DEFAULT_TEAM,
    response_url: str | None = None,
    trigger_id: str | None = None,
) -> dict[str, str]:
    """The form fields of a slash command, in the order Slack sends them."""
    return {
        "token": team.verification_token,
        "team_id": team.id,
        "team_domain": team.domain,
        "channel_id": channel.id,
        "channel_name": channel.name,
        "user_id": user.id,
        "user_name": user.name,
        "command": command,
        "text": text,
        "api_app_id": team.app_id,
        "is_enterprise_install": "false",
        "response_url": response_url or _response_url("commands", team),
        "trigger_id": trigger_id or _trigger_id(),
    }


def block_actions_payload(
    *,
    user: SlackUser,
    channel: SlackChannel,
    message: Mapping[str, Any],
    action: Mapping[str, Any],
    block_id: str,
    team: SlackTeam = DEFAULT_TEAM,
    response_url: str | None = None,
    trigger_id: str | None = None,
    is_ephemeral: bool = False,
) -> dict[str, Any]:
    """A ``block_actions`` payload for one click on ``action`` (a button element) in ``message``."""
    element: dict[str, Any] = {
        "action_id": action["action_id"],
        "block_id": block_id,
        "text": action.get("text"),
        "type": action.get("type", "button"),
        "action_ts": f"{time.time():.6f}",
    }
    for optional in ("value", "style", "url"):
        if optional in action:
            element[optional] = action[optional]
    emulator_only = ("channel", "edits", "replies", "parent_missing")
    message_object = {k: v for k, v in message.items() if k not in emulator_only}
    return {
        "type": "block_actions",
        "user": {"id": user.id, "username": user.name, "name": user.name, "team_id": team.id},
        "api_app_id": team.app_id,
        "token": team.verification_token,
        "container": {
            "type": "message",
            "message_ts": message["ts"],
            "channel_id": channel.id,
            "is_ephemeral": is_ephemeral,
        },
        "trigger_id": trigger_id or _trigger_id(),
        "team": {"id": team.id, "domain": team.domain},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel.id, "name": channel.name},
        "message": message_object,
        "state": {"values": {}},
        "response_url": response_url or _response_url("actions", team),
        "actions": [element],
    }


def find_button(message: Mapping[str, Any], action_id: str) -> tuple[str, Mapping[str, Any]]:
    """``(block_id, element)`` of the element a user can see in ``message``; KeyError if none."""
    shown = []
    for block in message.get("blocks") or ():
        elements = [*(block.get("elements") or ()), *filter(None, [block.get("accessory")])]
        for element in elements:
            if element.get("action_id") == action_id:
                return str(block.get("block_id", "")), element
            shown.append(element.get("action_id"))
    raise KeyError(f"message {message.get('ts')} has no {action_id!r}; it shows {shown}")


def click(
    message: Mapping[str, Any],
    action_id: str,
    *,
    user: SlackUser,
    channel: SlackChannel,
    team: SlackTeam = DEFAULT_TEAM,
    response_url: str | None = None,
) -> dict[str, Any]:
    """The payload Slack sends when ``user`` clicks the button ``action_id`` shown in ``message``.

    ``message`` is a message as the emulator stores it (``SlackEmulator.message()``), so a click
    on a button the bot never rendered fails here, as it could not happen in Slack.
    """
    block_id, element = find_button(message, action_id)
    return block_actions_payload(
        user=user,
        channel=channel,
        message=message,
        action=element,
        block_id=block_id,
        team=team,
        response_url=response_url,
    )


def event_callback(
    event: Mapping[str, Any],
    *,
    team: SlackTeam = DEFAULT_TEAM,
    event_id: str | None = None,
    event_time: int | None = None,
) -> dict[str, Any]:
    """The Events API envelope around ``event``."""
    return {
        "token": team.verification_token,
        "team_id": team.id,
        "api_app_id": team.app_id,
        "event": dict(event),
        "type": "event_callback",
        "event_id": event_id or f"Ev{next(_counter):04d}{secrets.token_hex(3).upper()}",
        "event_time": event_time if event_time is not None else int(time.time()),
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": team.id,
                "user_id": team.bot_user_id,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": f"4-{secrets.token_urlsafe(24)}",
    }


def url_verification(challenge: str, *, team: SlackTeam = DEFAULT_TEAM) -> dict[str, str]:
    """The one-time handshake Slack sends when the Request URL is saved."""
    return {"token": team.verification_token, "challenge": challenge, "type": "url_verification"}


def app_mention_event(
    text: str,
    *,
    user: SlackUser,
    channel: SlackChannel,
    ts: str | None = None,
    thread_ts: str | None = None,
    team: SlackTeam = DEFAULT_TEAM,
) -> dict[str, Any]:
    """An ``app_mention`` event (docs.slack.dev/reference/events/app_mention)."""
    event_ts = ts or f"{time.time():.6f}"
    event: dict[str, Any] = {
        "type": "app_mention",
        "user": user.id,
        "text": f"<@{team.bot_user_id}> {text}",
        "ts": event_ts,
        "channel": channel.id,
        "event_ts": event_ts,
    }
    if thread_ts is not None:
        event["thread_ts"] = thread_ts
    return event
