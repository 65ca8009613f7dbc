"""``ballast incidents list|show``: read incidents straight from the store."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import typer

from bot.cli.output import fail
from bot.errors import NotFoundError
from bot.incidents.lifecycle import IncidentStatus
from bot.incidents.read_model import AlertOut, IncidentDetail, IncidentSummary, TimelineOut
from bot.settings import Settings
from bot.store import incidents as repo
from bot.store.database import Database

incidents_app = typer.Typer(no_args_is_help=True, help="Look at incidents in the store.")


@incidents_app.command("list")
def list_command(
    status: Annotated[
        list[IncidentStatus] | None, typer.Option("--status", help="Only these states.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 50,
) -> None:
    """List incidents, newest first."""
    rows = asyncio.run(_list(status or [], limit))
    if as_json:
        typer.echo(json.dumps({"incidents": [r.model_dump(mode="json") for r in rows]}, indent=2))
        return
    if not rows:
        typer.echo("no incidents")
        return
    for row in rows:
        typer.echo(
            f"#{row.id:<5} {row.status:<12} {row.severity:<7} "
            f"{row.firing_count}/{row.alert_count} firing  {row.opened_at:%Y-%m-%d %H:%M:%SZ}  "
            f"{row.title}"
        )


@incidents_app.command("show")
def show_command(
    incident_id: Annotated[int, typer.Argument(metavar="ID")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show one incident with its alerts and timeline."""
    try:
        detail = asyncio.run(_show(incident_id))
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
    typer.echo("  timeline (UTC)")
    for entry in detail.timeline:
        typer.echo(f"    {entry.at:%Y-%m-%d %H:%M:%S}  {entry.actor:<14} {entry.summary}")


def _labels(labels: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(labels.items()))


async def _list(statuses: list[IncidentStatus], limit: int) -> list[IncidentSummary]:
    db = Database(Settings().async_database_url)
    try:
        await db.migrate()
        async with db.sessions() as session:
            rows = await repo.list_incidents(session, statuses=statuses, limit=limit)
            return [IncidentSummary.of(row) for row in rows]
    finally:
        await db.close()


async def _show(incident_id: int) -> IncidentDetail:
    db = Database(Settings().async_database_url)
    try:
        await db.migrate()
        async with db.sessions() as session:
            incident = await repo.get(session, incident_id)
            alerts = await repo.alerts_of(session, incident_id)
            timeline = await repo.timeline_of(session, incident_id)
        return IncidentDetail(
            **IncidentSummary.of(incident).model_dump(),
            alerts=[AlertOut.of(a) for a in alerts],
            timeline=[TimelineOut.of(t) for t in timeline],
            mitigations=[],
        )
    finally:
        await db.close()
