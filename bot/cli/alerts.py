"""``ballast alerts export``: the alerts received lately, as JSON for ``runbooks diff``."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from bot.cli.base import command, new_app
from bot.cli.output import fail, run_async
from bot.cli.store import DatabaseUrlOption, load_settings, open_existing

alerts_app = new_app(
    help="Export the alerts Ballast received, to replay them (ballast runbooks diff --alerts).",
    short_help="Export received alerts as JSON.",
)

SinceOption = Annotated[
    str, typer.Option("--since", metavar="DURATION", help="How far back: 7d, 24h, 90m.")
]


@command(alerts_app, short_help="Print the alerts received since a moment, as JSON.")
def export(
    since: SinceOption = "7d",
    limit: Annotated[int, typer.Option(metavar="N", help="At most this many alerts.")] = 10_000,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Print the latest state of each alert received within --since, newest first, as the JSON
    GET /api/v1/alerts answers (reads the store; the server may be down)."""
    from datetime import UTC, datetime

    from bot.runbooks.duration import parse_duration

    try:
        start = datetime.now(UTC) - parse_duration(since)
    except (ValueError, OverflowError) as err:
        fail(f"--since: {err}")
    body = run_async(_export(database_url, start, limit))
    typer.echo(json.dumps(body, indent=2))


async def _export(database_url: str | None, start: Any, limit: int) -> dict[str, Any]:
    from bot.store.alert_history import alerts_since

    db = await open_existing(load_settings(database_url))
    try:
        async with db.sessions() as session:
            alerts = await alerts_since(session, start, limit)
    finally:
        await db.close()
    return {"since": start.isoformat(), "alerts": alerts}
