"""Label text made inert in Markdown: every value a postmortem template prints is escaped.

A postmortem quotes what alerts carried (a title rendered from labels, group label values,
actors, errors quoting a URL), and a label can hold ``](https://evil.example)``, ``<img>`` or a
newline and ``# heading``. The draft's Jinja environment escapes every ``{{ … }}`` by default
(:func:`escape_value`, its ``finalize``); :func:`code` prints a value as inline code instead,
and :class:`Safe` marks text already written as Markdown (the summary), so nothing is escaped
twice. Team templates get the same default.
"""

from __future__ import annotations

import re
from typing import Any

# What can start markup mid-line (CommonMark + GFM): emphasis, code spans, links and images
# (no `[` means no `](…)`), raw HTML and autolinks, entities, table cells, strikethrough. An
# `_` inside a word cannot open emphasis, so `web_search` stays as it is.
_SPECIAL = re.compile(r"([\\`*\[\]<>|~&]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9]))")
# What starts a block when it begins a line (a value printed after "- " can): headings, lists,
# quotes, setext underlines, ordered lists.
_LEADING = re.compile(r"^(\d*)([#+\-=.)])(?=[\s=#]|$)")
_SPACE = re.compile(r"[\s\x00-\x1f\x7f]+")


class Safe(str):
    """Text that is Markdown already (built by these helpers): printed as it is."""

    __slots__ = ()


def md(value: Any) -> Safe:
    """Plain text as Markdown that shows exactly that text: one line, specials escaped.

    ``://`` and ``www.`` are broken up too, so a URL in a label is not autolinked.
    """
    text = _SPACE.sub(" ", str(value))
    text = _SPECIAL.sub(r"\\\1", text)
    text = _LEADING.sub(r"\1\\\2", text, count=1)
    text = text.replace("://", r":\/\/").replace("www.", r"www\.")
    return Safe(text)


def code(value: Any) -> Safe:
    """A value as inline code, whatever backticks or newlines it holds."""
    text = _SPACE.sub(" ", str(value)).strip()
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text else ""
    return Safe(f"{fence}{pad}{text}{pad}{fence}")


_LINK_TARGET = re.compile(r"https?://[^\s()<>\[\]`\\]+")


def url(value: Any) -> Safe:
    """An http(s) URL as a Markdown link target; anything else as inline code (never a link).

    For links Ballast builds itself (``runbooks.web_url``, values percent-encoded), not for
    URLs an alert carried.
    """
    text = str(value)
    return Safe(text) if _LINK_TARGET.fullmatch(text) else code(text)


def link(title: Any, url: str) -> Safe:
    """``[title](<url>)``: the title escaped as text, the URL kept clickable.

    Trace links come from ballast.yaml templates whose values are percent-encoded; what could
    still end the destination (``<``, ``>``, whitespace) is encoded here too.
    """
    target = re.sub(r"[<>\s]", lambda m: f"%{ord(m.group(0)):02X}", url)
    return Safe(f"[{md(title)}](<{target}>)")


def escape_value(value: Any) -> Any:
    """The template environment's ``finalize``: everything but :class:`Safe` is escaped."""
    if isinstance(value, Safe):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    return md(value)
