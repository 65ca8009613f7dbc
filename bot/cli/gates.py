"""``ballast gate check|approve``: release gates for CI, through a running server's API.

``check`` exits 0 when the version may ship and 1 when it is blocked, printing one line per
reason; the decision is recorded in the change log either way. It fails closed: a server that
cannot be reached or refuses the request is also 1 (with the server's message), and a bad
option or evaluation file is 2.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from bot.changelog.kinds import RECORDABLE
from bot.cli.base import command, new_app
from bot.cli.output import fail
from bot.cli.remote import DEFAULT_URL, Client, TokenOption, UrlOption

gate_app = new_app(help="Release gates: may this prompt, model, index... version ship now?")

KINDS = ", ".join(kind.value for kind in RECORDABLE)
ServiceOption = Annotated[str, typer.Option(metavar="NAME", help="The service to release to.")]
KindOption = Annotated[str, typer.Option(metavar="KIND", help=f"One of: {KINDS}.")]
VersionOption = Annotated[str, typer.Option(metavar="V", help="The version to release.")]


@command(gate_app, "check")
def check_command(
    service: ServiceOption,
    kind: KindOption,
    version: VersionOption,
    evals: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE",
            help='An evaluation report: {"metrics": {...}} or promptfoo\'s `eval -o` JSON.',
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the decision as JSON.")] = False,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
) -> None:
    """Ask the gate; exit 0 (pass) or 1 (blocked) with one line per reason."""
    _check_kind(kind)
    body: dict[str, Any] = {"service": service, "kind": kind, "version": version}
    if evals is not None:
        body["evals"] = _scores(evals)
    result = Client(url, token).post("/api/v1/gates/check", body)
    if as_json:
        typer.echo(json.dumps(result, indent=2))
    else:
        head = "PASS" if result["passed"] else "BLOCKED"
        typer.echo(f"{head}: {service} {kind} {version} (decision {result['decision_id']})")
        for reason in result["reasons"]:
            typer.echo(f"  blocked: {reason}")
        for line in result["checked"]:
            typer.echo(f"  ok: {line}")
    raise typer.Exit(0 if result["passed"] else 1)


@command(gate_app, "approve")
def approve_command(
    service: ServiceOption,
    kind: KindOption,
    version: VersionOption,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
) -> None:
    """Approve releasing a version, as yourself (an owner of the service)."""
    _check_kind(kind)
    result = Client(url, token).post(
        "/api/v1/gates/approve", {"service": service, "kind": kind, "version": version}
    )
    typer.echo(f"approved {service} {kind} {version}; approvals: {', '.join(result['approvals'])}")


def _check_kind(kind: str) -> None:
    if kind not in {k.value for k in RECORDABLE}:
        fail(f"--kind {kind!r} is not a change kind; use one of: {KINDS}", 2)


def _scores(path: Path) -> dict[str, float]:
    """Read the report here (a promptfoo output can be large) and send only the scores."""
    from bot.gates.evals import EvalReportError, scores_of

    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        fail(f"--evals {path}: cannot read it: {err.strerror}", 2)
    except json.JSONDecodeError as err:
        fail(f"--evals {path}:{err.lineno}:{err.colno}: not JSON: {err.msg}", 2)
    try:
        return scores_of(report)
    except EvalReportError as err:
        fail(f"--evals {path}: {err}", 2)
