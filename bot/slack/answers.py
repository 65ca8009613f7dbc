"""Slash-command answers and thread notes: incident and runbook lists, a runbook, controls.

Lines packed into as few sections as fit within 50 blocks, the rest counted with a pointer to
where the full list is.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from slack_sdk.models.blocks import Block, HeaderBlock, PlainTextObject

from bot.incidents.read_model import IncidentSummary
from bot.runbooks.duration import format_duration
from bot.runbooks.schema import Runbook
from bot.slack.incident_message import severity_emoji
from bot.slack.mrkdwn import (
    MAX_BLOCKS,
    MAX_HEADER,
    MAX_SECTION,
    MAX_TEXT,
    SlackMessage,
    as_utc,
    clip,
    clip_text,
    code,
    context,
    section,
    slack_date,
)
from bot.slack.text import escape, mention


class ControlLike(Protocol):
    """A control value as the store or the API hands it out."""

    @property
    def key(self) -> str: ...
    @property
    def value(self) -> bool | str: ...
    @property
    def version(self) -> int: ...
    @property
    def updated_at(self) -> datetime: ...
    @property
    def updated_by(self) -> str: ...


def render_ephemeral(text: str) -> SlackMessage:
    """A reply only the user sees; ``text`` is mrkdwn written by Ballast (user input escaped)."""
    return _message(text.splitlines() or ["(no text)"])


def render_incident_list(incidents: Sequence[IncidentSummary]) -> SlackMessage:
    """``/ballast list``: open incidents, most severe first, newest first within a severity."""
    if not incidents:
        return render_ephemeral(":white_check_mark: No open incidents.")
    ordered = sorted(incidents, key=lambda i: (i.severity, -as_utc(i.opened_at).timestamp()))
    lines = [
        f"{severity_emoji(i.severity)} *#{i.id}* {escape(i.severity.upper())} "
        f"{clip_text(i.title, 150)} — {escape(i.status)} · {code(i.service or '?', 60)} · "
        f"{i.firing_count}/{i.alert_count} alerts firing · opened {slack_date(i.opened_at)}"
        for i in ordered
    ]
    return _message(lines, header=f"Open incidents: {len(incidents)}", more="`/ballast show ID`")


def render_runbook(runbook: Runbook, *, group_ids: dict[str, str] | None = None) -> SlackMessage:
    """``/ballast runbook ID``: the whole runbook, as the responder needs it."""
    owners = " ".join(mention(o, group_ids) for o in runbook.owners)
    lines = [
        f"*Service* {code(runbook.service, 80)} · *Severity* {runbook.severity.value.upper()} · "
        f"*Owners* {owners}",
        "*Matches* " + ", ".join(code(m, 200) for m in runbook.match),
        "",
        "*Symptom*",
        clip_text(runbook.symptom, 2500),
        "",
        "*Business impact*",
        clip_text(runbook.business_impact, 2500),
    ]
    if runbook.dashboards:
        lines += ["", "*Dashboards*"]
        lines += [f"• {clip_text(d.title, 150)}: {code(d.url, 400)}" for d in runbook.dashboards]
    if runbook.likely_causes:
        lines += ["", "*Likely causes*"]
        lines += [f"{n}. {clip_text(c, 1000)}" for n, c in enumerate(runbook.likely_causes, 1)]
    if runbook.mitigations:
        lines += ["", "*Mitigations*"]
        for n, m in enumerate(runbook.mitigations, 1):
            after = f" · undo after {format_duration(m.undo_after)}" if m.undo_after else ""
            lines.append(
                f"{n}. {clip_text(m.title, 150)} — {code(m.action, 64)} · {m.mode.value}{after}"
            )
    if runbook.escalation:
        lines += ["", "*Escalation* (while unacknowledged)"]
        for step in runbook.escalation:
            who = [mention(n, group_ids) for n in step.notify]
            who += [f"page {code(step.page, 64)}"] if step.page else []
            lines.append(f"• after {format_duration(step.after)}: {', '.join(who)}")
    if runbook.rollback:
        lines += ["", "*Rollback*", clip_text(runbook.rollback, 2500)]
    return _message(lines, header=f"Runbook {runbook.id}", more="the runbook file in git")


def render_runbook_list(runbooks: Sequence[Runbook], query: str | None = None) -> SlackMessage:
    """``/ballast runbooks [QUERY]``: one line per runbook."""
    if not runbooks:
        found = f" matching {code(query, 100)}" if query else ""
        return render_ephemeral(f"No runbooks{found}.")
    lines = [
        f"{code(r.id, 200)} — {r.severity.value.upper()} · {code(r.service, 63)} · "
        f"{clip_text(r.symptom, 160)}"
        for r in runbooks
    ]
    header = f"Runbooks matching “{clip(query, 60)}”" if query else f"Runbooks: {len(runbooks)}"
    return _message(lines, header=header, more="`/ballast runbooks QUERY`")


def render_controls(values: Sequence[ControlLike], *, service: str | None = None) -> SlackMessage:
    """``/ballast controls [SERVICE]``: the AI control values the applications read now."""
    if not values:
        where = f" for {code(service, 63)}" if service else ""
        return render_ephemeral(
            f"No AI control values are set{where}; applications use their defaults."
        )
    lines = [
        f"{code(v.key, 200)} = {code(_flag(v.value), 200)} · v{v.version} · "
        f"{mention(v.updated_by)} {slack_date(v.updated_at)}"
        for v in sorted(values, key=lambda v: v.key)
    ]
    header = f"AI controls: {service}" if service else "AI controls"
    return _message(lines, header=header, more=f"`/ballast controls {service or 'SERVICE'}`")


def _message(lines: Sequence[str], *, header: str | None = None, more: str = "") -> SlackMessage:
    """Lines packed into as few sections as fit, within 50 blocks; the rest counted."""
    blocks: list[Block] = []
    if header:
        blocks.append(HeaderBlock(text=PlainTextObject(text=clip(header, MAX_HEADER))))
    chunks: list[list[str]] = [[]]
    size = 0
    for line in (clip(raw, MAX_SECTION) for raw in lines):
        if chunks[-1] and size + 1 + len(line) > MAX_SECTION:
            chunks.append([])
            size = 0
        chunks[-1].append(line)
        size += len(line) + 1
    chunks = [chunk for chunk in chunks if "".join(chunk).strip()]
    room = MAX_BLOCKS - len(blocks)
    hidden = 0
    if len(chunks) > room:
        hidden = sum(len(chunk) for chunk in chunks[room - 1 :])
        chunks = chunks[: room - 1]
    blocks += [section("\n".join(chunk)) for chunk in chunks]
    if hidden:
        blocks.append(context(f"…and {hidden} more lines; see {more or 'the API'}"))
    fallback = "\n".join(lines) if header is None else f"{header}\n" + "\n".join(lines)
    return SlackMessage(
        text=clip(fallback, MAX_TEXT) or " ", blocks=[block.to_dict() for block in blocks]
    )


def _flag(value: bool | str) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else value
