"""The one way text becomes Slack mrkdwn: escape everything, mention only Ballast's own ids.

Alert labels and annotations carry user text (an ``intent``, a ``locale``), and a runbook's
templates put them into titles, notes and notifications. Slack parses ``<!channel>``,
``<@U123>`` and ``<https://…|label>`` in any ``text`` it is given, so every piece of text
goes through :func:`escape` before it reaches Slack, whoever wrote it; the only markup Ballast
adds itself is a mention built by :func:`mention` / :func:`group_mention` from an id Ballast
holds (a runbook owner, a configured user group, the Slack user who clicked), never from text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from bot.incidents.changes import Note
from bot.incidents.timeline import SYSTEM_ACTOR

_USER_ID = re.compile(r"[UW][A-Z0-9]{2,}")
_GROUP_ID = re.compile(r"S[A-Z0-9]{2,}")
_HANDLE = re.compile(r"@[a-z0-9][a-z0-9._-]*")


def escape(text: str) -> str:
    """Slack's three control characters as entities, so text is never parsed as markup."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def is_user_id(who: str) -> bool:
    return _USER_ID.fullmatch(who) is not None


def mention(who: str, group_ids: Mapping[str, str] | None = None) -> str:
    """Slack markup for an owner or actor: a user id, a user group, or an escaped name."""
    if is_user_id(who):
        return f"<@{who}>"
    if _HANDLE.fullmatch(who):
        return group_mention(who, group_ids)
    if who == SYSTEM_ACTOR:
        return "Ballast"
    return escape(who)


def group_mention(handle: str, group_ids: Mapping[str, str] | None) -> str:
    """``@team`` as a real user-group mention when its id is configured, else as text."""
    group = (group_ids or {}).get(handle)
    if group and _GROUP_ID.fullmatch(group) and _HANDLE.fullmatch(handle):
        return f"<!subteam^{group}|{handle}>"
    return escape(handle)


def note_text(note: Note, group_ids: Mapping[str, str] | None = None) -> str:
    """A thread note: its text escaped, then who did it as a mention (``… by <@U123>``)."""
    text = escape(note.text)
    return f"{text} by {mention(note.actor, group_ids)}" if note.actor else text
