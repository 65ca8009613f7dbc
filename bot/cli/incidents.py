"""``ballast incidents``: list and show from the store; acknowledge, resolve, comment and
escalate via the server.

``list`` and ``show`` read the database directly (they work while the server is down);
``ack``, ``resolve``, ``comment`` and ``escalate`` change state, so they go through a running
server's API.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any

import typer

from bot.cli.base import MAX_ID, command, new_app
from bot.cli.output import fail, run_async
from bot.cli.remote import DEFAULT_URL, ActorOption, Client, ReasonOption, TokenOption, UrlOption
from bot.cli.store import DatabaseUrlOption, load_settings, open_existing
from bot.incidents.lifecycle import IncidentStatus

if TYPE_CHECKING:
    from bot.incidents.read_model import IncidentDetail, IncidentSummary

incidents_app = new_app(
    help=(
        "List and show incidents (from the store); acknowledge, resolve, comment on and "
        "escalate them (via the server)."
    ),
    short_help="List and show incidents; acknowledge, resolve, comment, escalate.",
)

IncidentId = Annotated[
    int, typer.Argument(metavar="ID", help="The incident's number.", min=1, max=MAX_ID)
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
# A storm incident holds tens of thousands of alerts and an entry each: the text view lists
# this many of each, as the console's page does (--json prints everything unless told).
SHOWN = 200
AlertsShown = Annotated[
    int | None,
    typer.Option(
        "--alerts",
        min=0,
        help=f"Alerts to list: the first, then firing ones [default: {SHOWN}; --json: all].",
    ),
]
AlertEntriesShown = Annotated[
    int | None,
    typer.Option(
        "--alert-entries",
        min=0,
        help="Timeline entries of alerts firing, firing again or resolved to list, the newest; "
        f"every other entry is listed [default: {SHOWN}; --json: all].",
    ),
]


@command(incidents_app, "list")
def list_command(
    status: Annotated[
        list[IncidentStatus] | None,
        typer.Option(
            "--status",
            metavar="STATE",
            help=f"Only this state (repeatable): {', '.join(IncidentStatus)}.",
        ),
    ] = None,
    service: Annotated[
        str | None, typer.Option(metavar="NAME", help="Only this service's incidents.")
    ] = None,
    runbook: Annotated[
        str | None, typer.Option(metavar="ID", help="Only incidents handled by this runbook.")
    ] = None,
    limit: Annotated[int, typer.Option(metavar="N", help="At most this many, newest first.")] = 50,
    as_json: JsonOption = False,
    database_url: DatabaseUrlOption = None,
) -> None:
    """List incidents, newest first."""
    rows = run_async(_list(database_url, status or [], service, runbook, limit))
    if as_json:
        typer.echo(json.dumps({"incidents": [r.model_dump(mode="json") for r in rows]}, indent=2))
        return
    if not rows:
        typer.echo("no incidents")
        return
    table = [("ID", "STATUS", "SEVERITY", "FIRING", "OPENED (UTC)", "SERVICE", "RUNBOOK", "TITLE")]
    for row in rows:
        table.append(
            (
                f"#{row.id}",
                str(row.status),
                str(row.severity),
                f"{row.firing_count}/{row.alert_count}",
                f"{row.opened_at:%Y-%m-%d %H:%M:%S}",
                row.service or "-",
                row.runbook_id or "(triage)",
                row.title,
            )
        )
    print_table(table)


@command(incidents_app, "show")
def show_command(
    incident_id: IncidentId,
    as_json: JsonOption = False,
    alerts: AlertsShown = None,
    alert_entries: AlertEntriesShown = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Show one incident with its alerts and timeline."""
    from bot.errors import NotFoundError

    if not as_json:
        alerts = SHOWN if alerts is None else alerts
        alert_entries = SHOWN if alert_entries is None else alert_entries
    try:
        detail = run_async(_show(database_url, incident_id, alerts, alert_entries))
    except NotFoundError as err:
        fail(str(err))
    if as_json:
        typer.echo(detail.model_dump_json(indent=2))
        return
    typer.echo(f"#{detail.id} {detail.title}")
    typer.echo(
        f"  status {detail.status}, severity {detail.severity}, service {detail.service or '-'}, "
        f"runbook {detail.runbook_id or '(triage)'}"
    )
    typer.echo(f"  group {json.dumps(detail.group_labels, sort_keys=True)}")
    typer.echo(f"  alerts {detail.firing_count}/{detail.alert_count} firing")
    for alert in detail.alerts:
        typer.echo(f"    {alert.status:<8} {alert.fingerprint}  {_labels(alert.labels)}")
    if detail.alerts_omitted:
        typer.echo(f"    ... {detail.alerts_omitted:,} more (--alerts N lists more)")
    if detail.changes:
        typer.echo("  recent AI changes (likely causes first)")
        for change in detail.changes:
            when = (
                f"{change.minutes_before:g} min before"
                if change.minutes_before >= 0
                else f"{-change.minutes_before:g} min after the first alert"
            )
            previous = f"{change.previous} → " if change.previous else ""
            mark = "*" if change.likely_cause else " "
            typer.echo(
                f"   {mark}{change.kind:<15} {previous}{change.version}  by {change.by}, {when}"
            )
    typer.echo("  timeline (UTC)")
    if detail.timeline_omitted:
        typer.echo(
            f"    ... {detail.timeline_omitted:,} older entries of alerts firing, firing again "
            "or resolved (--alert-entries N lists more)"
        )
    for entry in detail.timeline:
        typer.echo(f"    {entry.at:%Y-%m-%d %H:%M:%S}  {entry.actor:<14} {entry.summary}")


# What ack, resolve and comment print is the incident's state, not its alerts: the answer
# carries none of them, nor the entries they left (a storm incident's are tens of MB).
STATE = "?alerts_limit=0&alert_entries_limit=0"


@command(incidents_app, "ack")
def ack_command(
    incident_id: IncidentId,
    actor: ActorOption = None,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
) -> None:
    """Acknowledge an incident (through the server's API)."""
    payload = {"actor": actor} if actor else {}
    body = Client(url, token).post(f"/api/v1/incidents/{incident_id}/acknowledge{STATE}", payload)
    _print_state(body)


@command(incidents_app, "resolve")
def resolve_command(
    incident_id: IncidentId,
    actor: ActorOption = None,
    reason: ReasonOption = "",
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
) -> None:
    """Resolve an incident by hand (through the server's API)."""
    payload: dict[str, Any] = {"actor": actor} if actor else {}
    if reason:
        payload["reason"] = reason
    body = Client(url, token).post(f"/api/v1/incidents/{incident_id}/resolve{STATE}", payload)
    _print_state(body)


@command(incidents_app, "comment")
def comment_command(
    incident_id: IncidentId,
    text: Annotated[str, typer.Argument(metavar="TEXT", help="The note (one line).")],
    actor: ActorOption = None,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
) -> None:
    """Add a note to an incident's timeline (through the server's API)."""
    payload: dict[str, Any] = {"text": text}
    if actor:
        payload["actor"] = actor
    body = Client(url, token).post(f"/api/v1/incidents/{incident_id}/comments{STATE}", payload)
    entries = len(body["timeline"]) + body["timeline_omitted"]
    typer.echo(f"#{body['id']}: comment added ({entries} timeline entries)")


@command(incidents_app, "escalate")
def escalate_command(
    incident_id: IncidentId,
    actor: ActorOption = None,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
) -> None:
    """Fire the runbook's next escalation step now (through the server's API)."""
    payload = {"actor": actor} if actor else {}
    body = Client(url, token).post(f"/api/v1/incidents/{incident_id}/escalate", payload)
    typer.echo(f"#{body['incident_id']} escalation step {body['step']}: {body['summary']}")


def _print_state(body: dict[str, Any]) -> None:
    typer.echo(
        f"#{body['id']} {body['status']}: {body['title']} "
        f"({body['firing_count']}/{body['alert_count']} firing)"
    )


def print_table(rows: Sequence[tuple[str, ...]]) -> None:
    """Columns padded to their widest cell; the last column is not padded."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        typer.echo("  ".join([*cells, row[-1]]).rstrip())


def _labels(labels: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(labels.items()))


async def _list(
    database_url: str | None,
    statuses: list[IncidentStatus],
    service: str | None,
    runbook: str | None,
    limit: int,
) -> list[IncidentSummary]:
    from bot.incidents.read_model import IncidentSummary
    from bot.store import incidents as repo

    db = await open_existing(load_settings(database_url))
    try:
        async with db.sessions() as session:
            rows = await repo.list_incidents(
                session, statuses=statuses, service=service, runbook_id=runbook, limit=limit
            )
            return [IncidentSummary.model_validate(row) for row in rows]
    finally:
        await db.close()


async def _show(
    database_url: str | None,
    incident_id: int,
    alerts_limit: int | None,
    alert_entries_limit: int | None,
) -> IncidentDetail:
    from bot.config import load_config
    from bot.incidents.detail import bounded_alerts, bounded_timeline, load_changes
    from bot.incidents.read_model import AlertOut, IncidentDetail, IncidentSummary, TimelineOut
    from bot.store import incidents as repo

    settings = load_settings(database_url)
    window = load_config(settings.config).changes.window
    db = await open_existing(settings)
    try:
        async with db.sessions() as session:
            incident = await repo.get(session, incident_id)
            alerts, alerts_omitted = await bounded_alerts(session, incident, alerts_limit)
            timeline, timeline_omitted = await bounded_timeline(
                session, incident_id, alert_entries_limit
            )
            # Without the runbooks loaded, changes are ranked by time alone.
            changes = await load_changes(session, incident, None, window)
        return IncidentDetail(
            **IncidentSummary.model_validate(incident).model_dump(),
            alerts=[AlertOut.model_validate(a) for a in alerts],
            alerts_omitted=alerts_omitted,
            timeline=[TimelineOut.model_validate(t) for t in timeline],
            timeline_omitted=timeline_omitted,
            mitigations=[],
            changes=changes,
        )
    finally:
        await db.close()
