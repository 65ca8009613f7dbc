"""``ballast mitigations list|run|undo``: an incident's mitigations, through the server's API.

Run and undo follow the runbook's policy exactly as a Slack click or an API call does: the
actor must be an owner, high-risk actions need a second owner's approval (the first ``run``
requests, a second owner's ``run`` approves), and everything lands in the incident's timeline.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from bot.cli.base import MAX_ID, command, new_app
from bot.cli.incidents import print_table
from bot.cli.output import fail
from bot.cli.remote import (
    DEFAULT_URL,
    ActorOption,
    Client,
    ReasonOption,
    TokenOption,
    UrlOption,
)

mitigations_app = new_app(
    help="List, run and undo an incident's mitigations (through the server's API).",
    short_help="List, run and undo an incident's mitigations.",
)

IncidentId = Annotated[
    int, typer.Argument(metavar="INCIDENT", help="The incident's number.", min=1, max=MAX_ID)
]
MitigationId = Annotated[
    str, typer.Argument(metavar="MITIGATION", help="The mitigation's id in the runbook.")
]
DryRunOption = Annotated[
    bool, typer.Option("--dry-run", help="Say what would happen; change nothing.")
]


@command(mitigations_app, "list")
def list_command(
    incident_id: IncidentId,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
) -> None:
    """Show the incident's mitigations (from its runbook) and the state of each."""
    detail = Client(url, token).get(f"/api/v1/incidents/{incident_id}")
    mitigations: list[dict[str, Any]] = detail.get("mitigations", [])
    if not mitigations:
        typer.echo(f"#{incident_id} has no mitigations (runbook {detail.get('runbook_id')})")
        return
    table = [("MITIGATION", "STATE", "MODE", "RISK", "ACTION", "TITLE")]
    for m in mitigations:
        state = m["state"]
        if m.get("approvals"):
            state += f" (approved by {', '.join(m['approvals'])})"
        table.append((m["id"], state, m["mode"], m.get("risk") or "-", m["action"], m["title"]))
    print_table(table)
    for m in mitigations:  # the exact change an approval or a run would make now
        if m.get("plan"):
            verb = "approving sets" if m["state"] == "awaiting_approval" else "sets"
            typer.echo(f"{m['id']}: {verb} {m['plan']['text']}")
        elif m.get("plan_error"):
            typer.echo(f"{m['id']}: cannot tell what it would set: {m['plan_error']}")


@command(mitigations_app, "run")
def run_command(
    incident_id: IncidentId,
    mitigation_id: MitigationId,
    actor: ActorOption = None,
    dry_run: DryRunOption = False,
    reason: ReasonOption = "",
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
) -> None:
    """Request, approve or apply one of the incident's mitigations."""
    _act("run", incident_id, mitigation_id, actor, dry_run, reason, Client(url, token))


@command(mitigations_app, "undo")
def undo_command(
    incident_id: IncidentId,
    mitigation_id: MitigationId,
    actor: ActorOption = None,
    dry_run: DryRunOption = False,
    reason: ReasonOption = "",
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
) -> None:
    """Restore what an applied mitigation changed."""
    _act("undo", incident_id, mitigation_id, actor, dry_run, reason, Client(url, token))


def _act(
    verb: str,
    incident_id: int,
    mitigation_id: str,
    actor: str | None,
    dry_run: bool,
    reason: str,
    client: Client,
) -> None:
    path = f"/api/v1/incidents/{incident_id}/mitigations/{mitigation_id}/{verb}"
    payload: dict[str, Any] = {"dry_run": dry_run, "reason": reason}
    if actor:
        payload["actor"] = actor
    body = client.post(path, payload)
    line = f"#{incident_id} {mitigation_id}: {body['state']}: {body['message']}"
    if body["state"] == "awaiting_approval":
        line += (
            f" (approvals {len(body['approvals'])}/{body['approvals_needed']}: "
            f"{', '.join(body['approvals']) or 'none'})"
        )
    typer.echo(line)
    if body["state"] == "failed":
        fail(f"{verb} of {mitigation_id} failed")
