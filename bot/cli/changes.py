"""``ballast changes record|list``: the change log, through a running server's API.

Deploy pipelines record what went live (a prompt, a model, a retrieval index...) with a token
that has the ``automation`` or ``operator`` role; ``--id`` makes a retried step idempotent.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode

import typer

from bot.changelog.kinds import RECORDABLE, ChangeKind
from bot.cli.base import command, new_app
from bot.cli.output import fail
from bot.cli.remote import DEFAULT_URL, Client, TokenOption, UrlOption

changes_app = new_app(
    help="Record what went live in an AI system (for deploy pipelines) and list the change log."
)

KINDS = ", ".join(kind.value for kind in RECORDABLE)


@command(changes_app, "record")
def record_command(
    service: Annotated[str, typer.Option(metavar="NAME", help="The service that changed.")],
    kind: Annotated[str, typer.Option(metavar="KIND", help=f"One of: {KINDS}.")],
    version: Annotated[str, typer.Option(metavar="V", help="What is live now.")],
    previous: Annotated[
        str | None, typer.Option(metavar="P", help="What was live before (a rollback target).")
    ] = None,
    by: Annotated[
        str | None, typer.Option(metavar="WHO", help="Who shipped it (default: your token).")
    ] = None,
    link: Annotated[
        str | None, typer.Option(metavar="URL", help="The pull request, build or release.")
    ] = None,
    note: Annotated[
        str, typer.Option(metavar="TEXT", help="Anything responders should know.")
    ] = "",
    at: Annotated[
        str | None,
        typer.Option(metavar="TIME", help="When it went live, ISO 8601 with zone (default: now)."),
    ] = None,
    change_id: Annotated[
        str | None,
        typer.Option("--id", metavar="ID", help="Your pipeline's id: recording again is a no-op."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the stored change as JSON.")
    ] = False,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
) -> None:
    """Record a change that went live."""
    if kind not in {k.value for k in RECORDABLE}:
        fail(f"--kind {kind!r} is not a change kind; use one of: {KINDS}")
    if at is not None:
        try:
            when = datetime.fromisoformat(at.replace("Z", "+00:00"))
        except ValueError:
            fail(f"--at {at!r} is not an ISO 8601 time (e.g. 2026-12-04T10:15:00Z)")
        if when.tzinfo is None:
            fail(f"--at {at!r} needs a timezone (e.g. 2026-12-04T10:15:00Z)")
    body: dict[str, Any] = {"service": service, "kind": kind, "version": version}
    optional = {
        "previous": previous, "by": by, "link": link, "at": at, "external_id": change_id,
    }  # fmt: skip
    body.update({key: value for key, value in optional.items() if value is not None})
    if note:
        body["note"] = note
    change = Client(url, token).post("/api/v1/changes", body)
    if as_json:
        typer.echo(json.dumps(change, indent=2))
        return
    typer.echo(f"recorded change {change['id']}: {_line(change)}")


@command(changes_app, "list")
def list_command(
    service: Annotated[str | None, typer.Option(metavar="NAME", help="Only this service.")] = None,
    kind: Annotated[
        list[ChangeKind] | None,
        typer.Option(metavar="KIND", help="Only this kind (repeatable)."),
    ] = None,
    since: Annotated[
        str | None, typer.Option(metavar="TIME", help="Only changes live since (ISO 8601, zone).")
    ] = None,
    limit: Annotated[int, typer.Option(metavar="N", help="At most this many, newest first.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
) -> None:
    """List the change log, newest first: pipelines', people's and Ballast's own."""
    query: list[tuple[str, str]] = [("limit", str(limit))]
    if service:
        query.append(("service", service))
    query += [("kind", k.value) for k in kind or ()]
    if since:
        query.append(("since", since))
    body = Client(url, token).get(f"/api/v1/changes?{urlencode(query)}")
    if as_json:
        typer.echo(json.dumps(body, indent=2))
        return
    if not body["changes"]:
        typer.echo("no changes recorded" + (f" for {service}" if service else ""))
        return
    for change in body["changes"]:
        typer.echo(f"{change['at'][:19].replace('T', ' ')}Z  {_line(change)}")


def _line(change: dict[str, Any]) -> str:
    previous = f"{change['previous']} → " if change.get("previous") else ""
    return (
        f"{change['service']} {change['kind']} {previous}{change['version']} "
        f"by {change['by']}" + (f"  {change['link']}" if change.get("link") else "")
    )
