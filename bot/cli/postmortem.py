"""``ballast postmortem ID [--out FILE]``: draft an incident's postmortem from the store."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from actions.registry import default_registry
from bot.cli.output import fail
from bot.config import load_config
from bot.errors import BallastError
from bot.matching.catalog import LiveCatalog
from bot.matching.loader import load_catalog
from bot.postmortem.draft import Draft, render_draft
from bot.postmortem.facts import collect_facts
from bot.postmortem.service import write_atomically
from bot.settings import Settings
from bot.store.database import Database


def postmortem(
    incident_id: Annotated[int, typer.Argument(metavar="ID")],
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the Markdown here instead of stdout.")
    ] = None,
) -> None:
    """Draft the postmortem of an incident from its timeline and runbook (Markdown)."""
    try:
        draft = asyncio.run(_draft(incident_id))
    except BallastError as err:
        fail(str(err))
    if out is None:
        typer.echo(draft.markdown, nl=False)
        return
    write_atomically(out, draft.markdown)
    typer.echo(f"wrote {out}", err=True)


async def _draft(incident_id: int) -> Draft:
    settings = Settings()
    config = load_config(settings.config)
    runbooks = config.runbooks or settings.runbooks
    registry = default_registry()
    load = load_catalog([runbooks], registry)
    if load.catalog is None:
        fail("\n".join(str(d) for d in load.diagnostics))
    db = Database(settings.async_database_url)
    try:
        await db.migrate()
        facts = await collect_facts(db, LiveCatalog(load.catalog), registry, incident_id)
    finally:
        await db.close()
    return render_draft(facts, runbooks_root=runbooks)
