"""Settings and the database for commands that read the store directly (no server needed).

Read-only commands never create a database: run in the wrong folder, they would otherwise make
an empty ``./data/ballast.db`` and report "no incidents". They say where they looked instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from bot.cli.output import fail

if TYPE_CHECKING:
    from bot.settings import Settings
    from bot.store.database import Database

DatabaseUrlOption = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        metavar="URL",
        envvar="BALLAST_DATABASE_URL",
        show_default=False,
        help="The server's database (default: sqlite:///./data/ballast.db, under the folder "
        "where `ballast serve` runs).",
    ),
]


def load_settings(database_url: str | None = None, **overrides: Any) -> Settings:
    """Settings from the environment, with the command-line options that were given (an
    option left out, ``None``, leaves the environment's value or the default)."""
    from bot.settings import Settings

    given = {"database_url": database_url, **overrides}
    return Settings(**{name: value for name, value in given.items() if value is not None})


async def open_existing(settings: Settings, *, migrate: bool = True) -> Database:
    """The (migrated) database of ``settings``; exits with a clear message if it does not exist."""
    from bot.store.database import Database

    _require_sqlite_file(settings)
    url = settings.async_database_url
    db = Database(url)
    if not migrate:
        return db
    try:
        await db.migrate()
    except BaseException:
        await db.close()
        raise
    return db


def _require_sqlite_file(settings: Settings) -> None:
    from bot.settings import DEFAULT_DATABASE_URL
    from bot.store.database import sqlite_path

    if not settings.is_sqlite:
        return  # connecting to PostgreSQL creates nothing
    path = sqlite_path(settings.async_database_url)
    if not path or path == ":memory:" or Path(path).expanduser().exists():
        return
    where = Path(path).expanduser().resolve()
    source = (
        "the default URL, relative to this folder"
        if settings.database_url == DEFAULT_DATABASE_URL
        else f"BALLAST_DATABASE_URL={settings.database_url}"
    )
    fail(
        f"no Ballast database at {where} ({source}); run this in the folder where "
        "`ballast serve` runs, or point --database-url / BALLAST_DATABASE_URL at the "
        "server's database"
    )
