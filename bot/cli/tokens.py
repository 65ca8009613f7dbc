"""``ballast tokens create``: a new named API token, printed once, and its ballast.yaml line.

Ballast never stores the token, only its SHA-256 under ``auth.tokens``; losing the token means
making a new one. Revoke a token by removing its line and restart the server.
"""

from __future__ import annotations

from typing import Annotated

import typer

from bot.cli.base import command, new_app
from bot.cli.output import fail

tokens_app = new_app(
    help="Named API tokens: one per person, pipeline or bot, each revocable on its own.",
    short_help="Make named API tokens (auth.tokens in ballast.yaml).",
)


@command(tokens_app, short_help="Print a new token once, and the line to add to ballast.yaml.")
def create(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The principal's name (audited).")],
    role: Annotated[
        list[str],
        typer.Option(
            "--role",
            metavar="ROLE",
            help="reader, responder, operator, automation or impersonate; repeat for several.",
        ),
    ],
    slack_user: Annotated[
        str | None,
        typer.Option(
            "--slack-user",
            metavar="USER_ID",
            help="The Slack user id of the person this token is (owner rules compare it).",
        ),
    ] = None,
) -> None:
    """Print a new token and the auth.tokens entry that makes the server accept it."""
    from pydantic import ValidationError

    from bot.auth.config import TokenConfig
    from bot.auth.tokens import config_line, digest, new_token

    token = new_token()
    try:
        TokenConfig(name=name, sha256=digest(token), roles=role, slack_user=slack_user)
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
        fail(problems)
    typer.echo(f"token (shown once; give it to {name} and keep it secret):\n  {token}")
    typer.echo("add under auth.tokens in ballast.yaml, then restart the server:")
    typer.echo(f"  {config_line(name, token, role, slack_user)}")
