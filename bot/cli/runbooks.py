"""``ballast runbooks``: validate, test and explain runbooks, and print their JSON Schema.

Output is plain text, one fact per line, so CI logs, editors (``path:line:col``) and the
tests read it the same way. Exit status: 0 when everything is fine, 1 otherwise.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from bot.cli.base import SourceOption, command, new_app
from bot.cli.output import fail
from bot.cli.remote import DEFAULT_URL, Client, TokenOption, UrlOption

if TYPE_CHECKING:
    from actions import ActionRegistry
    from bot.errors import Diagnostic
    from bot.runbooks.explain import AlertExplanation, RunbookCheck
    from bot.runbooks.loader import CatalogLoad
    from bot.runbooks.promql_syntax import QuerySite
    from bot.runbooks.snapshot import Catalog

DEFAULT_PATHS = (Path("runbooks"),)
SCHEMA_ID = "https://ballast.dev/schemas/runbook.schema.json"

runbooks_app = new_app(
    help="Check runbooks like code: validate, test, explain matches, print the JSON Schema.",
    short_help="Validate, test and explain runbooks; print their schema.",
)

PathsArgument = Annotated[
    list[Path] | None,
    typer.Argument(metavar="PATH", help="Runbook files or folders (default: runbooks/)."),
]


ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        metavar="FILE",
        envvar="BALLAST_CONFIG",
        show_default=False,
        help="A ballast.yaml: check the scorecard panels runbooks name, and its panels' PromQL.",
    ),
]


@command(runbooks_app, short_help="Check runbooks; print each problem as path:line:col.")
def validate(paths: PathsArgument = None, config: ConfigOption = None) -> None:
    """Print every problem as path:line:col: message; exit 1 if any is an error.

    PromQL (verify queries, scorecard panels) is parsed by promtool when it is installed,
    in one run for the whole catalog."""
    from bot.runbooks.loader import load_catalog
    from bot.runbooks.promql_syntax import check_syntax

    panels: dict[str, list[str]] | None = None
    sites: list[QuerySite] = []
    problems: list[Diagnostic] = []
    if config is not None:
        panels = _config_scorecards(config, sites, problems)
    load = load_catalog(paths or DEFAULT_PATHS, panels=panels, config_name=str(config))
    syntax = check_syntax([*load.queries, *sites])
    diagnostics = sorted({*load.diagnostics, *problems, *syntax.diagnostics})
    for diagnostic in diagnostics:
        typer.echo(str(diagnostic))
    if syntax.note:
        typer.echo(f"note: {syntax.note}")
    if load.unchecked_panels:
        typer.echo(
            f"note: {_plural(load.unchecked_panels, 'scorecard panel name')} not checked: "
            "give the ballast.yaml with --config (or BALLAST_CONFIG)"
        )
    errors = [d for d in diagnostics if d.severity == "error"]
    warnings = len(diagnostics) - len(errors)
    tail = f", {_plural(warnings, 'warning')}" if warnings else ""
    if load.catalog is not None and not errors:
        typer.echo(f"{_plural(len(load.catalog), 'runbook')} valid{tail}")
        return
    files = len({d.path for d in errors})
    typer.echo(f"{_plural(len(errors), 'error')} in {_plural(files, 'file')}{tail}")
    raise typer.Exit(1)


def _config_scorecards(
    path: Path, sites: list[QuerySite], problems: list[Diagnostic]
) -> dict[str, list[str]]:
    """Each service's panel names in ballast.yaml, and each panel's query to parse.

    Read with positions (not through bot.config, which the server validates at start): only
    the scorecards matter here, and this command stays light.
    """
    from bot.runbooks.promql_syntax import query_site
    from bot.runbooks.yaml_positions import read_document

    doc = read_document(path, problems)
    services = doc.data.get("services") if doc is not None and isinstance(doc.data, dict) else None
    found: dict[str, list[str]] = {}
    if doc is None or not isinstance(services, dict):
        return found
    for service, settings in services.items():
        panels = settings.get("scorecard") if isinstance(settings, dict) else None
        names = found.setdefault(str(service), [])
        for i, panel in enumerate(panels if isinstance(panels, list) else []):
            if not isinstance(panel, dict):
                continue
            if isinstance(panel.get("name"), str):
                names.append(panel["name"])
            if isinstance(panel.get("query"), str):
                loc = ("services", service, "scorecard", i, "query")
                sites.append(query_site(doc, loc, panel["query"]))
    return found


@command(runbooks_app, "test", short_help="Run the runbooks' example alerts against the catalog.")
def run_examples(paths: PathsArgument = None) -> None:
    """Run every runbook's example alerts against the whole catalog; exit 1 on any failure."""
    from bot.runbooks.loader import load_catalog
    from bot.runbooks.testing import run_tests

    load = load_catalog(paths or DEFAULT_PATHS)
    if load.catalog is None:
        for diagnostic in load.diagnostics:
            typer.echo(str(diagnostic))
        typer.echo(_summary(load))
        raise typer.Exit(1)
    results = run_tests(load.catalog)
    for result in results:
        typer.echo(str(result))
    failed = sum(not result.passed for result in results)
    total = _plural(len(results), "case")
    typer.echo(f"{failed} of {total} failed" if failed else f"{total} passed")
    if failed:
        raise typer.Exit(1)


@command(runbooks_app, short_help="Show which runbooks an alert matches, and why.")
def explain(
    alert_json: Annotated[
        str, typer.Argument(metavar="ALERT_JSON", help="A webhook body in a file, or - for stdin.")
    ],
    source: SourceOption = None,
    runbooks: Annotated[
        list[Path] | None,
        typer.Option(
            "--runbooks",
            metavar="PATH",
            help="Runbook file or folder, repeatable (default: runbooks/).",
        ),
    ] = None,
) -> None:
    """Show which runbooks an alert matches, and which matcher failed for the others."""
    from bot.errors import PayloadError
    from bot.intake import parse_json_bytes
    from bot.intake.alert import AlertSource
    from bot.runbooks.explain import explain_payload
    from bot.runbooks.loader import load_catalog

    try:
        raw = (
            typer.get_binary_stream("stdin").read()
            if alert_json == "-"
            else Path(alert_json).read_bytes()
        )
    except OSError as err:
        fail(f"cannot read {alert_json}: {err.strerror}")
    load = load_catalog(runbooks or DEFAULT_PATHS)
    if load.catalog is None:
        for diagnostic in load.errors:
            typer.echo(str(diagnostic))
        fail("the runbooks have errors (listed above); fix them before explaining matches")
    try:
        result = explain_payload(
            load.catalog, parse_json_bytes(raw), AlertSource(source) if source else None
        )
    except PayloadError as err:
        fail(f"{alert_json}: {err}")
    typer.echo(f"source: {result.source.value}, {_plural(len(result.alerts), 'alert')}")
    for number, alert in enumerate(result.alerts, start=1):
        typer.echo("")
        for line in _render_alert(number, alert):
            typer.echo(line)


@command(runbooks_app, short_help="What a runbook change does to real alerts, as Markdown.")
def diff(
    old: Annotated[str, typer.Argument(metavar="OLD", help="A folder, or a git revision.")],
    new: Annotated[str, typer.Argument(metavar="NEW", help="A folder, or a git revision.")],
    alerts: Annotated[
        Path | None,
        typer.Option("--alerts", metavar="FILE", help="Alerts to replay (ballast alerts export)."),
    ] = None,
    from_server: Annotated[
        str | None,
        typer.Option(
            "--from-server", metavar="URL", help="Replay the alerts this server received."
        ),
    ] = None,
    since: Annotated[
        str, typer.Option("--since", metavar="DURATION", help="With --from-server: how far back.")
    ] = "7d",
    repo: Annotated[
        Path,
        typer.Option("--repo", metavar="DIR", help="The git repository of OLD/NEW revisions."),
    ] = Path("."),
    folder: Annotated[
        str,
        typer.Option("--path", metavar="PATH", help="The runbook folder in that repository."),
    ] = "runbooks",
    token: TokenOption = None,
) -> None:
    """Replay real alerts through the OLD and NEW catalogs and print, as Markdown for a pull
    request comment, the alerts whose runbook, match or first move changes. OLD and NEW are
    folders or git revisions (of --repo, folder --path). Exit 0: no change; 1: changes;
    2: NEW (or OLD) is invalid."""
    import tempfile

    from bot.runbooks.routing_diff import diff_routing, render_markdown

    if (alerts is None) == (from_server is None):
        fail("give the alerts to replay: --alerts FILE or --from-server URL")
    replayed = _alerts_to_replay(alerts, from_server, since, token)
    with tempfile.TemporaryDirectory(prefix="ballast-diff-") as scratch:
        catalogs = [
            _catalog_at(name, repo, folder, Path(scratch) / side)
            for name, side in ((old, "old"), (new, "new"))
        ]
        old_catalog, new_catalog = catalogs
        if old_catalog is None or new_catalog is None:
            raise typer.Exit(2)
        result = diff_routing(old_catalog, new_catalog, replayed)
    typer.echo(render_markdown(result, old, new), nl=False)
    if result.changed:
        raise typer.Exit(1)


def _alerts_to_replay(
    path: Path | None, server: str | None, since: str, token: str | None
) -> list[Any]:
    if server is not None:
        from urllib.parse import quote

        body = Client(server, token).get(f"/api/v1/alerts?since={quote(since)}")
    else:
        assert path is not None
        try:
            body = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            fail(f"--alerts {path}: cannot read alerts: {err}")
    found = body.get("alerts") if isinstance(body, dict) else body
    if not isinstance(found, list):
        fail("the alerts must be a JSON list, or an object with an 'alerts' list")
    return found


def _catalog_at(name: str, repo: Path, folder: str, scratch: Path) -> Catalog | None:
    """The catalog of a folder, or of a revision of ``repo``; None (reported) if invalid."""
    from bot.gitsync.git import GitError
    from bot.gitsync.revisions import extract_revision
    from bot.runbooks.loader import load_catalog

    where = Path(name)
    if not where.exists():
        try:
            where = extract_revision(repo, name, folder, scratch)
        except GitError as err:
            fail(f"{name}: neither a folder nor a revision of {repo}: {err}")
    load = load_catalog([where])
    if load.catalog is None:
        typer.echo(f"{name} is invalid:", err=True)
        for diagnostic in load.errors:
            shown = str(diagnostic).replace(str(scratch) + "/", "")
            typer.echo(shown, err=True)
    return load.catalog


@command(runbooks_app, short_help="Which runbook commit a server runs, and the last refused.")
def status(
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the server's JSON.")] = False,
) -> None:
    """Ask a running server which runbooks are live: the git commit and since when, and the
    last commit it refused with why. Exit 1 while the ref points at a refused commit."""
    body = Client(url, token).get("/api/v1/runbooks")
    if as_json:
        typer.echo(json.dumps({k: v for k, v in body.items() if k != "runbooks"}, indent=2))
    for line in status_lines(body):
        if not as_json:
            typer.echo(line)
    git = body.get("git") or {}
    refused = git.get("refused") or {}
    if refused and refused.get("commit") != git.get("commit") and _refused_is_newest(git):
        raise typer.Exit(1)


def _refused_is_newest(git: dict[str, Any]) -> bool:
    """True when the refused commit came after the live one went live."""
    refused = git.get("refused") or {}
    return bool(refused.get("at")) and (git.get("since") or "") <= refused["at"]


def status_lines(body: dict[str, Any]) -> list[str]:
    """The status as a few lines: source, live commit, since, last refused and why."""
    count = len(body.get("runbooks", []))
    git = body.get("git")
    if not git:
        return [
            f"source: folder, catalog version {body.get('version')}, {count} runbooks, "
            f"loaded at {body.get('loaded_at')}"
        ]
    lines = [
        f"source: git {git['url']} {git['ref']} (folder {git['path']})",
        f"live:   {git.get('commit') or 'none'} since {git.get('since') or '-'}, {count} runbooks",
        f"fetched: {git.get('checked_at') or 'not yet'}",
    ]
    if git.get("fetch_error"):
        lines.append(f"fetch error: {git['fetch_error']}")
    refused = git.get("refused")
    if refused:
        newest = " (the ref points at it: fix and push)" if _refused_is_newest(git) else ""
        lines.append(f"refused: {refused['commit']} at {refused['at']}{newest}")
        lines.extend(f"  {error}" for error in refused.get("errors", []))
    else:
        lines.append("refused: none")
    return lines


@command(runbooks_app, short_help="Print the runbook JSON Schema (for editors).")
def schema() -> None:
    """Print the runbook JSON Schema (for yaml-language-server and other editors)."""
    from actions import default_registry

    typer.echo(json.dumps(runbook_json_schema(default_registry()), indent=2))


def runbook_json_schema(registry: ActionRegistry) -> dict[str, Any]:
    """Runbook's schema, plus per-action ``params`` so editors complete and check them too.

    Every param also accepts a template string, since templated params are checked only
    after rendering.
    """
    from pydantic.json_schema import models_json_schema

    from bot.runbooks.schema import Runbook

    document = Runbook.model_json_schema()
    defs: dict[str, Any] = document.setdefault("$defs", {})
    refs, params_schema = models_json_schema(
        [(action.params_model, "validation") for action in registry.values()]
    )
    for name, definition in params_schema.get("$defs", {}).items():
        if name in defs:
            raise ValueError(f"schema name {name!r} is used by the runbook and an action")
        for key, prop in definition.get("properties", {}).items():
            definition["properties"][key] = {"anyOf": [prop, {"$ref": "#/$defs/Template"}]}
        defs[name] = definition
    defs["Template"] = {
        "type": "string",
        "pattern": r"\{\{|\{%",
        "description": "Jinja2 template over labels and annotations, checked after rendering.",
    }
    mitigation = defs["Mitigation"]
    mitigation["properties"]["action"]["enum"] = list(registry)
    mitigation["allOf"] = [
        {
            "if": {"properties": {"action": {"const": name}}, "required": ["action"]},
            "then": {"properties": {"params": refs[(action.params_model, "validation")]}},
        }
        for name, action in registry.items()
    ]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        **document,
        "title": "Ballast runbook",
        "description": (
            "One runbook per YAML file: the symptom, its impact, dashboards, likely causes, "
            "mitigations, escalation and example alerts. Check with `ballast runbooks validate`."
        ),
    }


def _summary(load: CatalogLoad) -> str:
    warnings = len(load.warnings)
    tail = f", {_plural(warnings, 'warning')}" if warnings else ""
    if load.catalog is not None:
        return f"{_plural(len(load.catalog), 'runbook')} valid{tail}"
    files = len({d.path for d in load.errors})
    return f"{_plural(len(load.errors), 'error')} in {_plural(files, 'file')}{tail}"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _render_alert(number: int, alert: AlertExplanation) -> list[str]:
    labels = ", ".join(f'{name}="{value}"' for name, value in sorted(alert.labels.items()))
    lines = [f"alert {number}: {{{labels}}}"]
    lines.append(f"  handled by: {alert.winner or 'no runbook'}")
    if not alert.runbooks:
        lines.append("  no runbook matches, and none has a matching alertname matcher")
    for check in alert.runbooks:
        lines.append(f"  {check.runbook_id}: {_verdict(check, alert)}")
        width = max(len(m.matcher) for m in check.matchers)
        for m in check.matchers:
            seen = (
                f'alert has {m.label}="{m.actual}"'
                if m.actual is not None
                else f"alert has no {m.label} label"
            )
            lines.append(f"    {'match' if m.matched else 'miss '}  {m.matcher:<{width}}  {seen}")
    return lines


def _verdict(check: RunbookCheck, alert: AlertExplanation) -> str:
    size = _plural(check.specificity, "matcher")
    if not check.matched:
        return f"does not match ({size})"
    if check.winner:
        return f"matches and wins ({size})"
    return f"matches but loses to {alert.winner} ({size}; most matchers win, then lowest id)"
