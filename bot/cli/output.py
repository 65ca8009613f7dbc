"""How the CLI reports failure: one clear line on stderr and a non-zero exit."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, NoReturn, TypeVar

import typer

T = TypeVar("T")


def fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"ballast: {message}", err=True)
    raise typer.Exit(code)


def run_async(work: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run``, importing asyncio only when a command needs it (start-up time)."""
    import asyncio

    return asyncio.run(work)
