"""A postmortem draft as replies in its incident's Slack thread.

The postmortem package makes the draft; this is where it goes in Slack. It implements
:class:`bot.postmortem.service.DraftPublisher`, so a draft made on resolve is queued in the
transaction that stores it.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from bot.postmortem.draft import Draft
from bot.slack.outbox import Enqueued, SlackOutbox
from bot.slack.text import escape

SLACK_CHUNK = 3500
"""Characters of Markdown per thread message (Slack truncates long ``text`` fields)."""


class PostmortemThread:
    def __init__(self, outbox: SlackOutbox) -> None:
        self._outbox = outbox

    async def publish_draft(self, session: AsyncSession, draft: Draft, key: str) -> bool:
        """The summary, then the Markdown in code blocks, as replies in the incident thread.

        False when the incident has no Slack message to reply under. As thread messages, not
        an uploaded file: an upload needs a plain HTTP POST to the URL
        ``files.getUploadURLExternal`` returns, which the outbox (Web API calls only) cannot
        replay after a crash.
        """
        head = (
            f":memo: *{escape(draft.title)}* — postmortem draft from the timeline "
            f"(`ballast postmortem {draft.incident_id}`)\n{escape(draft.summary)}"
        )
        result = await self._outbox.post_thread(session, draft.incident_id, head, f"{key}:0")
        if result is Enqueued.NO_MESSAGE:
            return False
        # Slack parses <!channel> and <url|label> inside code blocks too: escaped first, and
        # cut so that no &lt; entity is split between two messages.
        for index, chunk in enumerate(chunks(escape(draft.markdown), SLACK_CHUNK), start=1):
            await self._outbox.post_thread(
                session, draft.incident_id, f"```\n{chunk}\n```", f"{key}:{index}"
            )
        return True


def chunks(text: str, size: int) -> list[str]:
    """``text`` in pieces of at most ``size`` characters, cut at line ends where possible."""
    pieces: list[str] = []
    current = ""
    for line in text.splitlines(keepends=True):
        while len(line) > size:
            if current:
                pieces.append(current)
                current = ""
            cut = _cut(line, size)
            pieces.append(line[:cut])
            line = line[cut:]
        if len(current) + len(line) > size:
            pieces.append(current)
            current = ""
        current += line
    if current:
        pieces.append(current)
    return [p.rstrip("\n") for p in pieces]


def _cut(line: str, size: int) -> int:
    """Where to cut a too-long line: at ``size``, or before an ``&…;`` entity it would split."""
    amp = line.rfind("&", max(0, size - 5), size)
    if amp > 0 and ";" not in line[amp:size]:
        return amp
    return size
