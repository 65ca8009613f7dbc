"""``ballast scorecard SERVICE``: the service's scorecard now, straight from Prometheus.

Reads ``scorecard:`` and ``prometheus:`` from ballast.yaml (BALLAST_CONFIG); needs no database
and no running server. A panel Prometheus cannot answer shows ``?`` with the reason; the exit
code is 1 when no panel could be read.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated, Any

import typer

from bot.cli.output import fail, run_async

if TYPE_CHECKING:
    from bot.config import BallastConfig
    from bot.runbooks.schema import ScorecardPanel


def scorecard(
    service: Annotated[str, typer.Argument(metavar="SERVICE", help="A service in ballast.yaml.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    only: Annotated[
        list[str] | None,
        typer.Option("--panel", metavar="NAME", help="Only this panel (repeatable), in order."),
    ] = None,
) -> None:
    """Print the service's scorecard panels, queried now."""
    import difflib
    import json

    from bot.cli.store import load_settings
    from bot.config import load_config

    config = load_config(load_settings().config)
    panels = config.scorecard_for(service)
    if not panels:
        known = sorted(name for name, s in config.services.items() if s.scorecard)
        fail(
            f"no scorecard for service {service!r} in ballast.yaml "
            f"(services with one: {', '.join(known) or 'none'})"
        )
    if only:
        by_name = {panel.name: panel for panel in panels}
        for name in only:
            if name not in by_name:
                close = difflib.get_close_matches(name, list(by_name), n=1, cutoff=0.5)
                fix = (
                    f"did you mean {close[0]!r}?" if close else f"its panels: {', '.join(by_name)}"
                )
                fail(f"unknown panel {name!r} in {service}'s scorecard (ballast.yaml); {fix}")
        panels = [by_name[name] for name in dict.fromkeys(only)]
    rows = run_async(_read(config, service, panels))
    if as_json:
        typer.echo(json.dumps({"service": service, "panels": rows}, indent=2))
    else:
        width = max(len(row["name"]) for row in rows)
        typer.echo(f"Scorecard of {service}")
        for row in rows:
            good = "higher is better" if row["good"] == "up" else "lower is better"
            line = f"  {row['name']:<{width}}  {row['shown']:>12}   ({good})"
            if row["reason"]:
                line += f"  {row['reason']}"
            typer.echo(line)
    if all(row["value"] is None for row in rows):
        raise typer.Exit(1)


async def _read(
    config: BallastConfig, service: str, panels: list[ScorecardPanel]
) -> list[dict[str, Any]]:
    import httpx

    from bot.incidents.read_model import panel_value
    from bot.verification.prometheus import PrometheusClient
    from bot.verification.scorecard import read_panels

    chosen = config.prometheus_for(service)
    async with httpx.AsyncClient(follow_redirects=False) as http:
        client = PrometheusClient(chosen, http, os.environ) if chosen else None
        readings = await read_panels(panels, client, None)
    return [
        {
            "name": panel.name,
            "value": reading.value,
            "shown": panel_value(reading.value, panel.unit, panel.scale),
            "unit": panel.unit,
            "good": panel.good,
            "reason": reading.reason,
        }
        for panel, reading in zip(panels, readings, strict=True)
    ]
