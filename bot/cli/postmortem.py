"""``ballast postmortem ID [--out FILE]``: draft an incident's postmortem from the store."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bot.cli.base import MAX_ID
from bot.cli.output import fail, run_async
from bot.cli.store import DatabaseUrlOption, load_settings, open_existing

if TYPE_CHECKING:
    from bot.postmortem.draft import Draft


def postmortem(
    incident_id: Annotated[
        int, typer.Argument(metavar="ID", help="The incident's number.", min=1, max=MAX_ID)
    ],
    out: Annotated[
        Path | None,
        typer.Option("--out", metavar="FILE", help="Write the Markdown here instead of stdout."),
    ] = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Draft the postmortem of an incident from its timeline and runbook (Markdown)."""
    from bot.errors import BallastError
    from bot.postmortem.service import write_atomically

    try:
        draft = run_async(_draft(database_url, incident_id))
    except BallastError as err:
        fail(str(err))
    if out is None:
        typer.echo(draft.markdown, nl=False)
        return
    write_atomically(out, draft.markdown)
    typer.echo(f"wrote {out}", err=True)


async def _draft(database_url: str | None, incident_id: int) -> Draft:
    from actions.registry import default_registry
    from bot.config import load_config
    from bot.postmortem.draft import render_draft
    from bot.postmortem.facts import collect_facts
    from bot.runbooks.catalog import LiveCatalog
    from bot.runbooks.loader import load_catalog

    settings = load_settings(database_url)
    config = load_config(settings.config)
    runbooks = settings.runbooks
    if config.runbooks is not None and config.runbooks.path is not None:
        runbooks = config.runbooks.path
    elif config.runbooks is not None and config.runbooks.git is not None:
        from bot.gitsync.syncer import last_good_folder

        folder = last_good_folder(config.runbooks.git)
        if folder is None:
            fail("runbooks.git: no synced checkout here yet; run this beside the server")
        runbooks = folder
    registry = default_registry()
    load = load_catalog([runbooks], registry)
    if load.catalog is None:
        fail("\n".join(str(d) for d in load.diagnostics))
    db = await open_existing(settings)
    try:
        facts = await collect_facts(db, LiveCatalog(load.catalog), registry, incident_id)
    finally:
        await db.close()
    return render_draft(facts, runbooks_root=runbooks)
