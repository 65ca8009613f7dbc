"""The ``ballast`` command: one typer app composed of one sub-app per area.

Start-up matters (``ballast --help`` should answer at once), so only typer and the command
modules are imported here; each command imports FastAPI, SQLAlchemy, Slack and the rest when
it runs. ``tests/cli/test_conventions.py`` checks that ``ballast --help`` imports none of them.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from bot.cli.alerts import alerts_app
from bot.cli.base import command, new_app
from bot.cli.changes import changes_app
from bot.cli.controls import controls_app
from bot.cli.db import db_app
from bot.cli.demo import demo
from bot.cli.gates import gate_app
from bot.cli.incidents import incidents_app
from bot.cli.mitigations import mitigations_app
from bot.cli.postmortem import postmortem
from bot.cli.replay import replay
from bot.cli.runbooks import runbooks_app
from bot.cli.scorecard import scorecard
from bot.cli.serve import ENVIRONMENT, serve
from bot.cli.tokens import tokens_app
from bot.errors import ConfigError

SHELL_COMPLETION = "Shell completion: ballast --install-completion (bash, zsh, fish, PowerShell)."


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"ballast {version('ballast')}")
        except PackageNotFoundError:  # running from a checkout that was never installed
            import bot

            typer.echo(f"ballast {bot.__version__}")
        raise typer.Exit()


def _root(
    _version_flag: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_version,
            is_eager=True,
            help="Print the version and exit.",
        ),
    ] = False,
) -> None:
    """Runbook automation and incident response for AI systems in production."""


def build_cli() -> typer.Typer:
    cli = new_app(
        help="Runbook automation and incident response for AI systems in production.",
        name="ballast",
        epilog=SHELL_COMPLETION,
    )
    cli.callback()(_root)
    command(cli, epilog=ENVIRONMENT)(serve)
    command(cli, short_help="Feed webhook bodies from files through the incident engine.")(replay)
    command(cli, short_help="Draft an incident's postmortem (Markdown).")(postmortem)
    command(cli, short_help="The closed loop with Prometheus and Alertmanager, on loopback.")(demo)
    command(cli, short_help="A service's scorecard, queried from Prometheus now.")(scorecard)
    cli.add_typer(runbooks_app, name="runbooks")
    cli.add_typer(alerts_app, name="alerts")
    cli.add_typer(incidents_app, name="incidents")
    cli.add_typer(mitigations_app, name="mitigations")
    cli.add_typer(controls_app, name="controls")
    cli.add_typer(changes_app, name="changes")
    cli.add_typer(gate_app, name="gate")
    cli.add_typer(db_app, name="db")
    cli.add_typer(tokens_app, name="tokens")
    return cli


def main() -> None:
    try:
        build_cli()()
    except ConfigError as err:  # bad settings (unknown BALLAST_* names, unreadable *_FILE)
        typer.echo(f"ballast: {err}", err=True)
        sys.exit(2)
