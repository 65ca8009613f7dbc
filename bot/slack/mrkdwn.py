"""Block Kit's limits and the mrkdwn every Ballast message is written with.

Every message stays within Block Kit's limits (see ``docs`` in REFERENCE.md) however long the
runbook text: text is cut with a pointer to the full version, lists are counted rather than
listed without bound. User text is escaped (:func:`bot.slack.text.escape`) before it is cut, and
a cut never lands inside an ``&amp;`` entity or a markup pair.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from slack_sdk.models.blocks import ContextBlock, MarkdownTextObject, SectionBlock

from bot.slack.text import escape

MAX_BLOCKS = 50
MAX_TEXT = 40_000
MAX_SECTION = 3000
MAX_FIELD = 2000
MAX_HEADER = 150
MAX_BUTTON_TEXT = 75
MAX_CONFIRM_TITLE = 100
MAX_CONFIRM_TEXT = 300
MAX_CONTEXT = 2000


@dataclass(frozen=True, slots=True)
class SlackMessage:
    """``chat.postMessage`` / ``chat.update`` arguments: fallback text and Block Kit blocks."""

    text: str
    blocks: list[dict[str, Any]]

    def as_kwargs(self) -> dict[str, Any]:
        return {"text": self.text, "blocks": self.blocks}


def section(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=clip(text, MAX_SECTION)))


def context(text: str) -> ContextBlock:
    return ContextBlock(elements=[MarkdownTextObject(text=clip(text, MAX_CONTEXT))])


def clip(text: str, limit: int, ellipsis: str = "…") -> str:
    """Cut to ``limit`` characters, never inside an ``&amp;`` entity."""
    if len(text) <= limit:
        return text
    cut = text[: limit - len(ellipsis)]
    amp = cut.rfind("&")
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut + ellipsis


def clip_text(raw: str, limit: int, more: str | None = None) -> str:
    """Plain text escaped for mrkdwn and cut to ``limit``, saying where the rest is."""
    text = escape(raw)
    if len(text) <= limit:
        return text
    tail = f"… _(cut; full text: {more})_" if more else "…"
    return clip(text, limit, tail)


def code(raw: str, limit: int) -> str:
    return "`" + clip_text(raw.replace("`", "'"), limit) + "`"


def link(url: str, title: str) -> str:
    """``<url|title>`` for http(s) URLs (title already mrkdwn-safe); other schemes as text."""
    if not url.startswith(("https://", "http://")) or len(url) > 1500:
        return f"{title} ({code(url, 200)})"
    safe = escape(url).replace("|", "%7C")
    return f"<{safe}|{title.replace('|', '¦')}>"


def fit(head: str, lines: Sequence[str], limit: int = MAX_SECTION, extra: int = 0) -> str:
    """``head`` and as many whole lines as fit in ``limit``, so no markup is cut in half.

    What does not fit (plus ``extra`` items never listed) is counted: "…and N more".
    """
    out = head
    for index, line in enumerate(lines):
        after = len(lines) - index - 1 + extra
        reserve = len(f"\n…and {after} more") if after else 0
        if len(out) + 1 + len(line) + reserve > limit:
            return out + f"\n…and {len(lines) - index + extra} more"
        out += "\n" + line
    return out + (f"\n…and {extra} more" if extra else "")


def join_bounded(items: Sequence[str], limit: int) -> str:
    out: list[str] = []
    for index, item in enumerate(items):
        if sum(len(o) + 1 for o in out) + len(item) + 12 > limit:
            return " ".join(out) + f" +{len(items) - index} more"
        out.append(item)
    return " ".join(out)


def slack_date(at: datetime) -> str:
    """A date each reader sees in their own time zone, with a UTC fallback."""
    at = as_utc(at)
    fallback = at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(at.timestamp())}^{{date_short_pretty}} {{time}}|{fallback}>"


def as_utc(at: datetime) -> datetime:
    """Stored times are UTC; SQLite hands them back without a zone."""
    return at if at.tzinfo else at.replace(tzinfo=UTC)
