"""The ``ballast`` command: one typer app composed of one sub-app per area."""

from __future__ import annotations

import typer

from bot.cli.controls import controls_app
from bot.cli.demo import demo
from bot.cli.incidents import incidents_app
from bot.cli.postmortem import postmortem
from bot.cli.replay import replay
from bot.cli.runbooks import runbooks_app
from bot.cli.serve import serve


def build_cli() -> typer.Typer:
    cli = typer.Typer(
        name="ballast",
        help="Runbook automation and incident response for AI systems in production.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
    )
    cli.command()(serve)
    cli.command()(replay)
    cli.command()(postmortem)
    cli.command()(demo)
    cli.add_typer(runbooks_app, name="runbooks")
    cli.add_typer(incidents_app, name="incidents")
    cli.add_typer(controls_app, name="controls")
    return cli


def main() -> None:
    build_cli()()
