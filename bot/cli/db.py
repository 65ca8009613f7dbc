"""``ballast db upgrade|current``: the schema, for operators who migrate as a separate step.

``ballast serve`` migrates at start too, under a PostgreSQL advisory lock, so replicas that
start together migrate one at a time; ``db upgrade`` takes the same lock.
"""

from __future__ import annotations

import typer

from bot.cli.base import command, new_app
from bot.cli.output import run_async
from bot.cli.store import DatabaseUrlOption, load_settings, open_existing

db_app = new_app(
    help="Database schema: upgrade to this version's migrations, or show the current.",
    short_help="Upgrade the database schema, or show its revision.",
)


@command(db_app, "upgrade")
def upgrade_command(database_url: DatabaseUrlOption = None) -> None:
    """Run the migrations up to this version's newest (creates a SQLite file if missing)."""
    before, after, shown = run_async(_upgrade(database_url))
    if before == after:
        typer.echo(f"{shown}: already at revision {after}, nothing to do")
    else:
        typer.echo(f"{shown}: upgraded from revision {before or '(empty)'} to {after}")


@command(db_app, "current")
def current_command(database_url: DatabaseUrlOption = None) -> None:
    """Print the schema's revision and whether it is this version's newest (changes nothing)."""
    current, head, shown = run_async(_current(database_url))
    state = "up to date" if current == head else f"behind: run `ballast db upgrade` (to {head})"
    typer.echo(f"{shown}: revision {current or '(empty)'}, {state}")
    if current != head:
        raise typer.Exit(1)


async def _upgrade(database_url: str | None) -> tuple[str | None, str | None, str]:
    from bot.store.database import Database

    db = Database(load_settings(database_url).async_database_url)
    try:
        before, after = await db.migrate()
        return before, after, _shown(db)
    finally:
        await db.close()


async def _current(database_url: str | None) -> tuple[str | None, str | None, str]:
    from bot.store.database import head_revision

    db = await open_existing(load_settings(database_url), migrate=False)
    try:
        return await db.current_revision(), head_revision(), _shown(db)
    finally:
        await db.close()


def _shown(db: object) -> str:
    from bot.store.database import Database

    assert isinstance(db, Database)
    return db.engine.url.render_as_string(hide_password=True)
