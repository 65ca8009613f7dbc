"""``ballast replay``: feed recorded payloads through the webhook path, to try runbooks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bot.cli.base import SourceOption
from bot.cli.output import fail, run_async

if TYPE_CHECKING:
    from bot.intake.alert import AlertBatch


def replay(
    files: Annotated[
        list[Path],
        typer.Argument(
            metavar="FILE",
            exists=True,
            dir_okay=False,
            help="Webhook bodies (JSON), e.g. examples/alerts/*.json.",
        ),
    ],
    source: SourceOption = None,
) -> None:
    """Store each payload as its webhook would, run the incident engine, print the result."""
    from bot.errors import BallastError, PayloadError
    from bot.intake import detect_source, parse_json_bytes, parse_payload
    from bot.intake.alert import AlertSource

    batches: list[tuple[Path, AlertBatch]] = []
    for path in files:
        try:
            data = parse_json_bytes(path.read_bytes())
            batches.append(
                (path, parse_payload(AlertSource(source) if source else detect_source(data), data))
            )
        except PayloadError as err:
            fail(f"{path}: {err}")
    try:
        lines = run_async(_replay(batches))
    except BallastError as err:
        fail(str(err))
    for line in lines:
        typer.echo(line)


async def _replay(batches: list[tuple[Path, AlertBatch]]) -> list[str]:
    from bot.app import build_services
    from bot.settings import Settings
    from bot.store import inbox
    from bot.store import incidents as repo

    services = build_services(Settings())
    lines: list[str] = []
    try:
        await services.db.migrate()
        for path, batch in batches:
            async with services.db.transaction() as session:
                result = await inbox.store_batch(session, batch, services.clock())
            await services.engine.process_pending()
            lines.append(
                f"{path}: {result.received} alert(s), {result.stored} new, "
                f"{result.duplicates} duplicate"
            )
        async with services.db.sessions() as session:
            for incident in await repo.list_incidents(session, limit=20):
                group = json.dumps(incident.group_labels, sort_keys=True)
                lines.append(
                    f"  #{incident.id} {incident.status:<10} {incident.runbook_id or '(triage)'} "
                    f"{group} {incident.firing_count}/{incident.alert_count} firing: "
                    f"{incident.title}"
                )
    finally:
        await services.db.close()
    return lines
