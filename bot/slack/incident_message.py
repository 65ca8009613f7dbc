"""Block Kit messages: the incident message, thread notes and slash-command answers.

Laid out for a responder woken at 3 a.m.: what is on fire and how badly (header, status
fields, the Acknowledge button), why it matters, where to look, who owns it, then one row per
mitigation with its preview, risk and the buttons its state allows. Every message stays
within Block Kit's limits (see ``docs`` in REFERENCE.md) however long the runbook text, however
many alerts or mitigations: text is cut with a pointer to the full version, lists are counted
rather than listed without bound. ``slack_sdk``'s ``to_dict()`` re-checks each block.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from actions.base import Risk
from bot.execution.results import ExecutionState
from bot.incidents.lifecycle import IncidentStatus
from bot.incidents.read_model import NOT_RUN, IncidentSummary
from bot.runbooks.duration import format_duration
from bot.runbooks.schema import MitigationMode, Runbook
from bot.slack.ids import ActionId, ButtonValue, action_id
from bot.slack.view import DashboardLink, IncidentView, MitigationView, escape, mention

MAX_BLOCKS = 50
MAX_TEXT = 40_000
MAX_SECTION = 3000
MAX_FIELD = 2000
MAX_HEADER = 150
MAX_BUTTON_TEXT = 75
MAX_CONFIRM_TITLE = 100
MAX_CONFIRM_TEXT = 300
MAX_CONTEXT = 2000

_SEVERITY = {
    "sev1": ":red_circle:",
    "sev2": ":large_orange_circle:",
    "sev3": ":large_yellow_circle:",
}
_OTHER_SEVERITY = ":large_blue_circle:"
_STATUS: dict[str, str] = {
    IncidentStatus.TRIGGERED: ":rotating_light: Triggered",
    IncidentStatus.ACKNOWLEDGED: ":eyes: Acknowledged",
    IncidentStatus.MITIGATING: ":hammer_and_wrench: Mitigating",
    IncidentStatus.MONITORING: ":mag: Monitoring",
    IncidentStatus.RESOLVED: ":white_check_mark: Resolved",
}
_RISK = {
    Risk.LOW: ":large_green_circle: low risk",
    Risk.MEDIUM: ":large_orange_circle: medium risk",
    Risk.HIGH: ":red_circle: high risk",
}
_STATE: dict[str, str] = {
    NOT_RUN: "not run yet",
    ExecutionState.AWAITING_APPROVAL: ":hourglass_flowing_sand: awaiting approval",
    ExecutionState.RUNNING: ":gear: running…",
    ExecutionState.APPLIED: ":white_check_mark: applied",
    ExecutionState.UNDOING: ":leftwards_arrow_with_hook: undoing…",
    ExecutionState.UNDONE: ":leftwards_arrow_with_hook: undone",
    ExecutionState.FAILED: ":x: failed",
    ExecutionState.DONE_MANUALLY: ":ballot_box_with_check: done by hand",
}
_RAN = frozenset(
    {
        ExecutionState.RUNNING,
        ExecutionState.APPLIED,
        ExecutionState.UNDOING,
        ExecutionState.UNDONE,
        ExecutionState.FAILED,
    }
)
"""States in which the approvals given are shown as who ran it."""
_CHANGED = frozenset({ExecutionState.APPLIED, ExecutionState.UNDOING, ExecutionState.UNDONE})
"""States in which the control's before → after is shown."""


@dataclass(frozen=True, slots=True)
class SlackMessage:
    """``chat.postMessage`` / ``chat.update`` arguments: fallback text and Block Kit blocks."""

    text: str
    blocks: list[dict[str, Any]]

    def as_kwargs(self) -> dict[str, Any]:
        return {"text": self.text, "blocks": self.blocks}


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


# ---- the incident message ----------------------------------------------------------------


def render_incident(view: IncidentView) -> SlackMessage:
    """The one message per incident, updated in place as the incident changes."""
    top: list[Block] = [
        HeaderBlock(text=PlainTextObject(text=_header(view), emoji=True)),
        SectionBlock(fields=[MarkdownTextObject(text=f) for f in _fields(view)]),
    ]
    if view.actions:
        top.append(
            ActionsBlock(
                block_id="ballast.incident",
                elements=[_incident_button(view, kind) for kind in view.actions],
            )
        )
    more_text = f"`/ballast runbook {view.runbook_id}`" if view.runbook_id else "the runbook"
    for label, body in (("Symptom", view.symptom), ("Business impact", view.business_impact)):
        if body:
            top.append(_section(f"*{label}*\n" + _clip_text(body, MAX_SECTION - 100, more_text)))
    if view.dashboards:
        top.append(_section(_fit("*Dashboards*", [_dashboard(d) for d in view.dashboards])))
    if view.likely_causes:
        causes = [f"{n}. {_clip_text(c, 600)}" for n, c in enumerate(view.likely_causes, 1)]
        top.append(_section(_fit("*Likely causes*", causes)))
    top.append(_section(_alerts(view)))
    if view.runbook_id is not None and view.symptom is None:
        top.append(
            _section(f":warning: Runbook `{escape(view.runbook_id)}` is not in the catalog.")
        )
    top.append(DividerBlock())

    footer = _context(_footer(view))
    room = MAX_BLOCKS - len(top) - 1
    rows: list[Block] = []
    count = len(view.mitigations)
    for index, mitigation in enumerate(view.mitigations):
        cost = 2 if mitigation.actions else 1
        reserve = 1 if index + 1 < count else 0  # room for "N more" if others follow
        if len(rows) + cost + reserve > room:
            rows.append(
                _context(f"+{count - index} more mitigations: `/ballast show {view.incident_id}`")
            )
            break
        rows.extend(_mitigation_blocks(view, index + 1, mitigation))
    if not view.mitigations and view.symptom is not None:
        rows.append(_context("This runbook has no mitigations to run from Slack."))
    blocks = [block.to_dict() for block in (*top, *rows, footer)]
    return SlackMessage(text=_fallback(view), blocks=blocks)


def _header(view: IncidentView) -> str:
    severity = view.severity.upper()
    if view.status == IncidentStatus.RESOLVED:
        return _clip(f":white_check_mark: Resolved · {severity} · {view.title}", MAX_HEADER)
    emoji = _SEVERITY.get(view.severity, _OTHER_SEVERITY)
    return _clip(f"{emoji} {severity} · {view.title}", MAX_HEADER)


def _fields(view: IncidentView) -> list[str]:
    status = _STATUS.get(view.status, escape(view.status))
    if view.status == IncidentStatus.RESOLVED and view.resolved_at:
        status += f" {_date(view.resolved_at)}" + (
            f" by {view.resolved_by}" if view.resolved_by else ""
        )
    elif view.acknowledged_at:
        status += f"\nack {_date(view.acknowledged_at)}" + (
            f" by {view.acknowledged_by}" if view.acknowledged_by else ""
        )
    elif view.is_open:
        status += " — *not acknowledged*"
    if view.reopen_count:
        status += (
            f"\nreopened {view.reopen_count} times" if view.reopen_count > 1 else "\nreopened once"
        )
    alerts = view.alerts
    fields = [
        f"*Status*\n{status}",
        f"*Severity*\n{escape(view.severity.upper())}",
        f"*Service*\n{_code(view.service or 'unknown', 100)}",
        f"*Opened*\n{_date(view.opened_at)}",
        "*Owners*\n" + (_join_bounded(view.owners, MAX_FIELD - 20) or "_none listed_"),
        f"*Alerts firing*\n{alerts.firing} of {alerts.total}",
    ]
    return [_clip(field, MAX_FIELD) for field in fields]


def _dashboard(link: DashboardLink) -> str:
    title = _clip_text(link.title, 150)
    if link.url is None:
        return f"• {title} — _{_clip_text(link.note or 'no link', 400)}_"
    return f"• {_link(link.url, title)}"


def _alerts(view: IncidentView) -> str:
    counts = view.alerts
    lines = []
    for example in counts.examples:
        emoji = ":fire:" if example.firing else ":large_green_circle:"
        labels = " ".join(f"{escape(k)}={_code(v, 60)}" for k, v in example.labels)
        summary = f" — {_clip_text(example.summary, 200)}" if example.summary else ""
        lines.append(f"{emoji} {_code(example.alertname, 80)} {labels}{summary}".rstrip())
    head = f"*Alerts* — {counts.firing} of {counts.total} firing"
    return _fit(head, lines, extra=counts.more)


def _mitigation_blocks(view: IncidentView, number: int, m: MitigationView) -> list[Block]:
    blocks: list[Block] = [_section(_mitigation_text(number, m))]
    if m.actions:
        buttons = [_mitigation_button(view, m, kind) for kind in m.actions]
        blocks.append(ActionsBlock(block_id=f"ballast.mitigation:{m.id}", elements=buttons))
    return blocks


def _mitigation_text(number: int, m: MitigationView) -> str:
    risk = _RISK[m.risk] if m.risk else ":grey_question: risk unknown"
    if m.mode == MitigationMode.MANUAL:
        how = "done by hand"
    elif m.mode == MitigationMode.AUTO and m.approvals_needed == 0:
        how = "runs automatically"
    else:
        how = f"needs {m.approvals_needed} approval" + (
            "s (two people)" if m.approvals_needed > 1 else ""
        )
    undo = {True: "reversible", False: "cannot be undone", None: ""}[m.reversible]
    undo = "" if m.mode == MitigationMode.MANUAL else undo
    meta = " · ".join(p for p in (risk, how, undo, _STATE.get(m.state, escape(m.state))) if p)
    lines = [f"*{number}. {_clip_text(m.title, 200)}*", meta]
    if m.preview:
        lines.append(f"> {_clip_text(m.preview, 800)}")
    if m.state == ExecutionState.AWAITING_APPROVAL:
        so_far = _people(m.approvals) or "none"
        lines.append(
            f"Requested by {m.requested_by or 'unknown'} · approvals {len(m.approvals)} of "
            f"{m.approvals_needed}: {so_far}"
        )
    elif m.approvals and m.state in _RAN:
        lines.append(_who_ran(m))
    if m.changed_value and m.state in _CHANGED:
        lines.append(f"{_code(m.before or 'unset', 200)} → {_code(m.after or 'unset', 200)}")
    if m.state == ExecutionState.UNDONE and m.undone_by:
        lines.append(f"Undone by {m.undone_by}")
    if m.error and m.state == ExecutionState.FAILED:
        lines.append(f":warning: {_clip_text(m.error, 600)}")
    return _fit(lines[0], lines[1:])


def _who_ran(m: MitigationView) -> str:
    if m.approvals == (m.requested_by,):
        return f"Run by {m.requested_by}"
    return f"Requested by {m.requested_by or 'unknown'} · approved by {_people(m.approvals)}"


def _people(who: Sequence[str], shown: int = 10) -> str:
    more = f" +{len(who) - shown} more" if len(who) > shown else ""
    return ", ".join(who[:shown]) + more


_LABELS = {
    ActionId.RUN: "Run",
    ActionId.APPROVE: "Approve",
    ActionId.SKIP: "Skip",
    ActionId.UNDO: "Undo",
    ActionId.MARK_DONE: "Mark done",
    ActionId.ACK: "Acknowledge",
    ActionId.RESOLVE: "Resolve",
}


def _mitigation_button(view: IncidentView, m: MitigationView, kind: ActionId) -> ButtonElement:
    value = ButtonValue(
        action=kind,
        incident_id=view.incident_id,
        mitigation_id=m.id,
        state=m.state,
        version=m.version,
    )
    label = (
        "Run again" if kind is ActionId.RUN and m.state == ExecutionState.FAILED else _LABELS[kind]
    )
    style: str | None = None
    confirm: ConfirmObject | None = None
    if kind in (ActionId.RUN, ActionId.APPROVE):
        style = "primary" if m.risk is Risk.LOW else "danger"
        if m.risk in (Risk.HIGH, None):
            confirm = _confirm(
                f"{label}: {m.risk or 'unknown'}-risk action",
                m.preview or m.title,
                "Run it" if kind is ActionId.RUN else "Approve",
            )
    elif kind is ActionId.UNDO:
        before = f" It puts back the previous value: {m.before}." if m.before is not None else ""
        confirm = _confirm(
            f"Undo: {m.title}", f"The mitigation stops protecting users.{before}", "Undo"
        )
    return ButtonElement(
        text=PlainTextObject(text=_clip(label, MAX_BUTTON_TEXT), emoji=True),
        action_id=action_id(kind, m.id),
        value=value.encode(),
        style=style,
        confirm=confirm,
    )


def _incident_button(view: IncidentView, kind: ActionId) -> ButtonElement:
    value = ButtonValue(
        action=kind, incident_id=view.incident_id, state=view.status, version=view.version
    )
    confirm = None
    if kind is ActionId.RESOLVE:
        confirm = _confirm(
            f"Resolve incident #{view.incident_id}?",
            "Applied mitigations stay in place; undo them from this message when it is safe.",
            "Resolve",
        )
    return ButtonElement(
        text=PlainTextObject(text=_LABELS[kind], emoji=True),
        action_id=action_id(kind),
        value=value.encode(),
        style="primary" if kind is ActionId.ACK else None,
        confirm=confirm,
    )


def _confirm(title: str, text: str, yes: str) -> ConfirmObject:
    return ConfirmObject(
        title=PlainTextObject(text=_clip(title, MAX_CONFIRM_TITLE)),
        text=PlainTextObject(text=_clip(text, MAX_CONFIRM_TEXT)),
        confirm=PlainTextObject(text=_clip(yes, 30)),
        deny=PlainTextObject(text="Cancel"),
        style="danger",
    )


def _footer(view: IncidentView) -> str:
    parts = [f"Incident #{view.incident_id}"]
    if view.runbook_id:
        parts.append(f"runbook {_code(view.runbook_id, 200)}")
    parts.append(f"`/ballast show {view.incident_id}`")
    if view.url:
        parts.append(_link(view.url, "API"))
    return " · ".join(parts)


def _fallback(view: IncidentView) -> str:
    """The notification text: severity, title, status and the owners (so they are pinged)."""
    owners = " ".join(view.owners[:20])
    text = (
        f"{view.severity.upper()} #{view.incident_id} {escape(view.title)} — {view.status}; "
        f"{view.alerts.firing} of {view.alerts.total} alerts firing"
    )
    return _clip(text, MAX_SECTION - len(owners) - 10) + (f". Owners: {owners}" if owners else "")


# ---- thread notes and slash-command answers ---------------------------------------------


def render_ephemeral(text: str) -> SlackMessage:
    """A reply only the user sees; ``text`` is mrkdwn written by Ballast (user input escaped)."""
    return _message(text.splitlines() or ["(no text)"])


def render_incident_list(incidents: Sequence[IncidentSummary]) -> SlackMessage:
    """``/ballast list``: open incidents, most severe first, newest first within a severity."""
    if not incidents:
        return render_ephemeral(":white_check_mark: No open incidents.")
    ordered = sorted(incidents, key=lambda i: (i.severity, -_utc(i.opened_at).timestamp()))
    lines = [
        f"{_SEVERITY.get(i.severity, _OTHER_SEVERITY)} *#{i.id}* {escape(i.severity.upper())} "
        f"{_clip_text(i.title, 150)} — {escape(i.status)} · {_code(i.service or '?', 60)} · "
        f"{i.firing_count}/{i.alert_count} alerts firing · opened {_date(i.opened_at)}"
        for i in ordered
    ]
    return _message(lines, header=f"Open incidents: {len(incidents)}", more="`/ballast show ID`")


def render_runbook(runbook: Runbook, *, group_ids: dict[str, str] | None = None) -> SlackMessage:
    """``/ballast runbook ID``: the whole runbook, as the responder needs it."""
    owners = " ".join(mention(o, group_ids) for o in runbook.owners)
    lines = [
        f"*Service* {_code(runbook.service, 80)} · *Severity* {runbook.severity.value.upper()} · "
        f"*Owners* {owners}",
        "*Matches* " + ", ".join(_code(m, 200) for m in runbook.match),
        "",
        "*Symptom*",
        _clip_text(runbook.symptom, 2500),
        "",
        "*Business impact*",
        _clip_text(runbook.business_impact, 2500),
    ]
    if runbook.dashboards:
        lines += ["", "*Dashboards*"]
        lines += [f"• {_clip_text(d.title, 150)}: {_code(d.url, 400)}" for d in runbook.dashboards]
    if runbook.likely_causes:
        lines += ["", "*Likely causes*"]
        lines += [f"{n}. {_clip_text(c, 1000)}" for n, c in enumerate(runbook.likely_causes, 1)]
    if runbook.mitigations:
        lines += ["", "*Mitigations*"]
        for n, m in enumerate(runbook.mitigations, 1):
            after = f" · undo after {format_duration(m.undo_after)}" if m.undo_after else ""
            lines.append(
                f"{n}. {_clip_text(m.title, 150)} — {_code(m.action, 64)} · {m.mode.value}{after}"
            )
    if runbook.escalation:
        lines += ["", "*Escalation* (while unacknowledged)"]
        for step in runbook.escalation:
            who = [mention(n, group_ids) for n in step.notify]
            who += [f"page {_code(step.page, 64)}"] if step.page else []
            lines.append(f"• after {format_duration(step.after)}: {', '.join(who)}")
    if runbook.rollback:
        lines += ["", "*Rollback*", _clip_text(runbook.rollback, 2500)]
    return _message(lines, header=f"Runbook {runbook.id}", more="the runbook file in git")


def render_runbook_list(runbooks: Sequence[Runbook], query: str | None = None) -> SlackMessage:
    """``/ballast runbooks [QUERY]``: one line per runbook."""
    if not runbooks:
        found = f" matching {_code(query, 100)}" if query else ""
        return render_ephemeral(f"No runbooks{found}.")
    lines = [
        f"{_code(r.id, 200)} — {r.severity.value.upper()} · {_code(r.service, 63)} · "
        f"{_clip_text(r.symptom, 160)}"
        for r in runbooks
    ]
    header = f"Runbooks matching “{_clip(query, 60)}”" if query else f"Runbooks: {len(runbooks)}"
    return _message(lines, header=header, more="`/ballast runbooks QUERY`")


def render_controls(values: Sequence[ControlLike], *, service: str | None = None) -> SlackMessage:
    """``/ballast controls [SERVICE]``: the AI control values the applications read now."""
    if not values:
        where = f" for {_code(service, 63)}" if service else ""
        return render_ephemeral(
            f"No AI control values are set{where}; applications use their defaults."
        )
    lines = [
        f"{_code(v.key, 200)} = {_code(_flag(v.value), 200)} · v{v.version} · "
        f"{mention(v.updated_by)} {_date(v.updated_at)}"
        for v in sorted(values, key=lambda v: v.key)
    ]
    header = f"AI controls: {service}" if service else "AI controls"
    return _message(lines, header=header, more=f"`/ballast controls {service or 'SERVICE'}`")


def _message(lines: Sequence[str], *, header: str | None = None, more: str = "") -> SlackMessage:
    """Lines packed into as few sections as fit, within 50 blocks; the rest counted."""
    blocks: list[Block] = []
    if header:
        blocks.append(HeaderBlock(text=PlainTextObject(text=_clip(header, MAX_HEADER))))
    chunks: list[list[str]] = [[]]
    size = 0
    for line in (_clip(raw, MAX_SECTION) for raw in lines):
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
    blocks += [_section("\n".join(chunk)) for chunk in chunks]
    if hidden:
        blocks.append(_context(f"…and {hidden} more lines; see {more or 'the API'}"))
    fallback = "\n".join(lines) if header is None else f"{header}\n" + "\n".join(lines)
    return SlackMessage(
        text=_clip(fallback, MAX_TEXT) or " ", blocks=[block.to_dict() for block in blocks]
    )


# ---- mrkdwn helpers ------------------------------------------------------------------------


def _section(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=_clip(text, MAX_SECTION)))


def _context(text: str) -> ContextBlock:
    return ContextBlock(elements=[MarkdownTextObject(text=_clip(text, MAX_CONTEXT))])


def _clip(text: str, limit: int, ellipsis: str = "…") -> str:
    """Cut to ``limit`` characters, never inside an ``&amp;`` entity."""
    if len(text) <= limit:
        return text
    cut = text[: limit - len(ellipsis)]
    amp = cut.rfind("&")
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut + ellipsis


def _clip_text(raw: str, limit: int, more: str | None = None) -> str:
    """Plain text escaped for mrkdwn and cut to ``limit``, saying where the rest is."""
    text = escape(raw)
    if len(text) <= limit:
        return text
    tail = f"… _(cut; full text: {more})_" if more else "…"
    return _clip(text, limit, tail)


def _code(raw: str, limit: int) -> str:
    return "`" + _clip_text(raw.replace("`", "'"), limit) + "`"


def _link(url: str, title: str) -> str:
    """``<url|title>`` for http(s) URLs (title already mrkdwn-safe); other schemes as text."""
    if not url.startswith(("https://", "http://")) or len(url) > 1500:
        return f"{title} ({_code(url, 200)})"
    safe = escape(url).replace("|", "%7C")
    return f"<{safe}|{title.replace('|', '¦')}>"


def _fit(head: str, lines: Sequence[str], limit: int = MAX_SECTION, extra: int = 0) -> str:
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


def _join_bounded(items: Sequence[str], limit: int) -> str:
    out: list[str] = []
    for index, item in enumerate(items):
        if sum(len(o) + 1 for o in out) + len(item) + 12 > limit:
            return " ".join(out) + f" +{len(items) - index} more"
        out.append(item)
    return " ".join(out)


def _date(at: datetime) -> str:
    """A date each reader sees in their own time zone, with a UTC fallback."""
    at = _utc(at)
    fallback = at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(at.timestamp())}^{{date_short_pretty}} {{time}}|{fallback}>"


def _utc(at: datetime) -> datetime:
    """Stored times are UTC; SQLite hands them back without a zone."""
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _flag(value: bool | str) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else value
