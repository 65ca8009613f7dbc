"""The incident message: the one Slack message per incident, updated in place.

Laid out for a responder woken at 3 a.m.: what is on fire and how badly (header, status
fields, the Acknowledge button), why it matters, where to look, who owns it, then one row per
mitigation (:mod:`bot.slack.mitigation_rows`). However many alerts or mitigations, it stays
within 50 blocks; ``slack_sdk``'s ``to_dict()`` re-checks each block.
"""

from __future__ import annotations

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from bot.incidents.lifecycle import IncidentStatus
from bot.incidents.read_model import ChangeOut
from bot.slack.buttons import incident_button
from bot.slack.mitigation_rows import mitigation_blocks
from bot.slack.mrkdwn import (
    MAX_BLOCKS,
    MAX_FIELD,
    MAX_HEADER,
    MAX_SECTION,
    SlackMessage,
    clip,
    clip_text,
    code,
    context,
    fit,
    join_bounded,
    link,
    section,
    slack_date,
)
from bot.slack.text import escape
from bot.slack.view import DashboardLink, IncidentView

_SEVERITY = {
    "sev1": ":red_circle:",
    "sev2": ":large_orange_circle:",
    "sev3": ":large_yellow_circle:",
}
_OTHER_SEVERITY = ":large_blue_circle:"
MAX_CHANGES = 5  # the rest: `ballast incidents show`, the API's `changes`
_STATUS: dict[str, str] = {
    IncidentStatus.TRIGGERED: ":rotating_light: Triggered",
    IncidentStatus.ACKNOWLEDGED: ":eyes: Acknowledged",
    IncidentStatus.MITIGATING: ":hammer_and_wrench: Mitigating",
    IncidentStatus.MONITORING: ":mag: Monitoring",
    IncidentStatus.RESOLVED: ":white_check_mark: Resolved",
}


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
                elements=[incident_button(view, kind) for kind in view.actions],
            )
        )
    more_text = f"`/ballast runbook {view.runbook_id}`" if view.runbook_id else "the runbook"
    for label, body in (("Symptom", view.symptom), ("Business impact", view.business_impact)):
        if body:
            top.append(section(f"*{label}*\n" + clip_text(body, MAX_SECTION - 100, more_text)))
    if view.dashboards:
        top.append(section(fit("*Dashboards*", [_dashboard(d) for d in view.dashboards])))
    if view.traces:
        top.append(section(fit("*Traces*", [_dashboard(t) for t in view.traces])))
    if view.likely_causes:
        causes = [f"{n}. {clip_text(c, 600)}" for n, c in enumerate(view.likely_causes, 1)]
        top.append(section(fit("*Likely causes*", causes)))
    if view.changes:
        shown = [_change(c) for c in view.changes[:MAX_CHANGES]]
        extra = len(view.changes) - len(shown)
        top.append(section(fit("*Recent AI changes*", shown, extra=extra)))
    top.append(section(_alerts(view)))
    if view.scorecard:
        top.append(
            section(
                fit("*Scorecard* (since opened)", [clip_text(" · ".join(view.scorecard), 1500)])
            )
        )
    if view.runbook_id is not None and view.symptom is None:
        top.append(section(f":warning: Runbook `{escape(view.runbook_id)}` is not in the catalog."))
    top.append(DividerBlock())

    footer = context(_footer(view))
    room = MAX_BLOCKS - len(top) - 1
    rows: list[Block] = []
    count = len(view.mitigations)
    for index, mitigation in enumerate(view.mitigations):
        cost = 2 if mitigation.actions else 1
        reserve = 1 if index + 1 < count else 0  # room for "N more" if others follow
        if len(rows) + cost + reserve > room:
            rows.append(
                context(f"+{count - index} more mitigations: `/ballast show {view.incident_id}`")
            )
            break
        rows.extend(mitigation_blocks(view, index + 1, mitigation))
    if not view.mitigations and view.symptom is not None:
        rows.append(context("This runbook has no mitigations to run from Slack."))
    blocks = [block.to_dict() for block in (*top, *rows, footer)]
    return SlackMessage(text=_fallback(view), blocks=blocks)


def _header(view: IncidentView) -> str:
    severity = view.severity.upper()
    if view.status == IncidentStatus.RESOLVED:
        return clip(f":white_check_mark: Resolved · {severity} · {view.title}", MAX_HEADER)
    emoji = severity_emoji(view.severity)
    return clip(f"{emoji} {severity} · {view.title}", MAX_HEADER)


def severity_emoji(severity: str) -> str:
    return _SEVERITY.get(severity, _OTHER_SEVERITY)


def _fields(view: IncidentView) -> list[str]:
    status = _STATUS.get(view.status, escape(view.status))
    if view.status == IncidentStatus.RESOLVED and view.resolved_at:
        status += f" {slack_date(view.resolved_at)}" + (
            f" by {view.resolved_by}" if view.resolved_by else ""
        )
    elif view.acknowledged_at:
        status += f"\nack {slack_date(view.acknowledged_at)}" + (
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
        f"*Service*\n{code(view.service or 'unknown', 100)}",
        f"*Opened*\n{slack_date(view.opened_at)}",
        "*Owners*\n" + (join_bounded(view.owners, MAX_FIELD - 20) or "_none listed_"),
        f"*Alerts firing*\n{alerts.firing} of {alerts.total}",
    ]
    return [clip(field, MAX_FIELD) for field in fields]


def _dashboard(dashboard: DashboardLink) -> str:
    title = clip_text(dashboard.title, 150)
    if dashboard.url is None:
        return f"• {title} — _{clip_text(dashboard.note or 'no link', 400)}_"
    return f"• {link(dashboard.url, title)}"


def _change(change: ChangeOut) -> str:
    """``• retrieval_index kb-11 → kb-12 by release-bot, 24 min before the first alert``."""
    previous = f"{code(change.previous, 80)} → " if change.previous else ""
    what = f"{code(change.kind, 40)} {previous}{code(change.version, 80)}"
    if change.link:
        what = f"{what} ({link(change.link, 'link')})"
    minutes = change.minutes_before
    when = (
        f"{_ago(minutes)} before the first alert"
        if minutes > 0
        else f"{_ago(-minutes)} after the first alert"
        if minutes < 0
        else "as the first alert fired"
    )
    mark = " — _likely cause_" if change.likely_cause else ""
    return f"• {what} by {clip_text(change.by, 80)}, {when}{mark}"


def _ago(minutes: float) -> str:
    if minutes < 90:
        return f"{minutes:.0f} min"
    return f"{minutes / 60:.1f} h"


def _alerts(view: IncidentView) -> str:
    counts = view.alerts
    lines = []
    for example in counts.examples:
        emoji = ":fire:" if example.firing else ":large_green_circle:"
        labels = " ".join(f"{escape(k)}={code(v, 60)}" for k, v in example.labels)
        summary = f" — {clip_text(example.summary, 200)}" if example.summary else ""
        lines.append(f"{emoji} {code(example.alertname, 80)} {labels}{summary}".rstrip())
    head = f"*Alerts* — {counts.firing} of {counts.total} firing"
    return fit(head, lines, extra=counts.more)


def _footer(view: IncidentView) -> str:
    parts = [f"Incident #{view.incident_id}"]
    if view.runbook_id:
        runbook = f"runbook {code(view.runbook_id, 200)}"
        if view.runbook_revision:
            at = code(view.runbook_revision[:12], 12)
            revision = link(view.runbook_url, at) if view.runbook_url else at
            runbook += f" at {revision}"
        parts.append(runbook)
    parts.append(f"`/ballast show {view.incident_id}`")
    if view.url:
        parts.append(link(view.url, "API"))
    return " · ".join(parts)


def _fallback(view: IncidentView) -> str:
    """The notification text: severity, title, status and the owners (so they are pinged)."""
    owners = " ".join(view.owners[:20])
    text = (
        f"{view.severity.upper()} #{view.incident_id} {escape(view.title)} — {view.status}; "
        f"{view.alerts.firing} of {view.alerts.total} alerts firing"
    )
    return clip(text, MAX_SECTION - len(owners) - 10) + (f". Owners: {owners}" if owners else "")
