"""``ballast serve`` with SQLite at ``synchronous=NORMAL``, only to measure what FULL costs.

Ballast runs SQLite with ``synchronous=FULL`` so that an alert it acknowledged survives a power
loss, not only a process crash. ``bench/ingest.py`` starts this instead of ``python -m bot
serve`` for its FULL-versus-NORMAL comparison; nothing else uses it. It changes one pragma on
every new connection and then runs the real command.

Run: ``python bench/serve_variant.py --port 8080`` (same options and environment as serve).
"""

from __future__ import annotations

import sys
from typing import Any

from bot.store import database


def main() -> None:
    full = database._sqlite_pragmas

    def normal(dbapi_connection: Any, record: Any) -> None:
        full(dbapi_connection, record)
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    # Database() looks the hook up when it is built, which happens after this.
    database._sqlite_pragmas = normal  # type: ignore[assignment]

    from bot.cli import main as cli

    sys.argv = ["ballast", "serve", *sys.argv[1:]]
    cli()


if __name__ == "__main__":
    main()
