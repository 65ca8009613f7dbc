"""The postmortem draft's Markdown as HTML, safely: every character of the source is escaped
first, and only a fixed subset is turned into tags (headings, lists, tables, paragraphs, fenced
code, ``code``, **strong**, *em*, and links whose URL is http or https). Raw HTML in the draft
stays text. No Markdown library at run time (markdown-it-py is a test dependency only)."""

from __future__ import annotations

import html
import re

from markupsafe import Markup, escape

from bot.web.pages import web_url

_ESCAPED = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|<>~])")
_CODE = re.compile(r"`([^`]+)`")
_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")
_STRONG = re.compile(r"\*\*(.+?)\*\*")
_EM = re.compile(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])")
_HEADING = re.compile(r"(#{1,6})\s+(.*)")
_ITEM = re.compile(r"\s*[-*+]\s+(.*)")
_RULE = re.compile(r"\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?")
_PLACEHOLDER = "\x00{}\x00"


def inline(text: str) -> str:
    """One line's inline Markdown as escaped HTML."""
    kept: list[str] = []

    def keep(html: str) -> str:
        kept.append(html)
        return _PLACEHOLDER.format(len(kept) - 1)

    text = text.replace("\x00", "")
    text = _ESCAPED.sub(lambda m: keep(str(escape(m.group(1)))), text)
    text = _CODE.sub(lambda m: keep(f"<code>{escape(_unkeep(m.group(1), kept))}</code>"), text)

    def anchor(match: re.Match[str]) -> str:
        label, url = match.group(1), _unkeep(match.group(2), kept)
        safe = web_url(url)
        if safe is None:
            return keep(str(escape(label)) + " (" + str(escape(url)) + ")")
        return keep(f'<a href="{escape(safe)}" rel="noopener noreferrer">{escape(label)}</a>')

    text = _LINK.sub(anchor, text)
    escaped = str(escape(text))
    escaped = _STRONG.sub(r"<strong>\1</strong>", escaped)
    escaped = _EM.sub(r"<em>\1</em>", escaped)
    return _restore(escaped, kept)


def _unkeep(text: str, kept: list[str]) -> str:
    """Placeholders back to their (escaped) characters, inside code and URLs."""
    return re.sub("\x00(\\d+)\x00", lambda m: html.unescape(kept[int(m.group(1))]), text)


def _restore(text: str, kept: list[str]) -> str:
    while "\x00" in text:
        text = re.sub("\x00(\\d+)\x00", lambda m: kept[int(m.group(1))], text)
    return text


def _cells(line: str) -> list[str]:
    body = line.strip()
    body = body[1:] if body.startswith("|") else body
    body = body[:-1] if body.endswith("|") and not body.endswith("\\|") else body
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", body)]


def render(markdown: str) -> Markup:
    """The whole draft as HTML (a ``Markup``: already escaped)."""
    out: list[str] = []
    lines = markdown.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            block: list[str] = []
            i += 1
            while i < len(lines) and not lines[i].startswith("```"):
                block.append(lines[i])
                i += 1
            out.append(f"<pre><code>{escape(chr(10).join(block))}</code></pre>")
            i += 1
            continue
        heading = _HEADING.fullmatch(line)
        if heading:
            level = min(len(heading.group(1)) + 1, 6)  # the page's own <h1> is the incident
            out.append(f"<h{level}>{inline(heading.group(2))}</h{level}>")
            i += 1
            continue
        if (
            line.lstrip().startswith("|")
            and i + 1 < len(lines)
            and _RULE.fullmatch(lines[i + 1].strip())
        ):
            head = "".join(f'<th scope="col">{inline(c)}</th>' for c in _cells(line))
            rows: list[str] = []
            i += 2
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                rows.append("<tr>" + "".join(f"<td>{inline(c)}</td>" for c in _cells(lines[i])))
                i += 1
            out.append(
                f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
            )
            continue
        if _ITEM.fullmatch(line):
            items: list[str] = []
            while i < len(lines) and (item := _ITEM.fullmatch(lines[i])):
                items.append(f"<li>{inline(item.group(1))}</li>")
                i += 1
            out.append(f"<ul>{''.join(items)}</ul>")
            continue
        if not line.strip():
            i += 1
            continue
        paragraph: list[str] = []
        while (
            i < len(lines)
            and lines[i].strip()
            and not _HEADING.fullmatch(lines[i])
            and not _ITEM.fullmatch(lines[i])
            and not lines[i].startswith("```")
            and not lines[i].lstrip().startswith("|")
        ):
            paragraph.append(inline(lines[i]))
            i += 1
        out.append(f"<p>{'<br>'.join(paragraph)}</p>" if paragraph else "")
        if not paragraph:
            out.append(f"<p>{inline(lines[i])}</p>")
            i += 1
    return Markup("\n".join(out))  # noqa: S704 - built from escaped text and fixed tags
