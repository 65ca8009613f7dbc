"""The ``ballast`` command: one typer app composed of one sub-app per area."""

from __future__ import annotations

import typer

from bot.cli.runbooks import runbooks_app


def build_cli() -> typer.Typer:
    cli = typer.Typer(
        name="ballast",
        help="Runbook automation and incident response for AI systems in production.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
    )
    cli.add_typer(runbooks_app, name="runbooks")
    return cli


def main() -> None:
    build_cli()()
