"""How the CLI reports failure: one clear line on stderr and a non-zero exit."""

from __future__ import annotations

from typing import NoReturn

import typer


def fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"ballast: {message}", err=True)
    raise typer.Exit(code)
