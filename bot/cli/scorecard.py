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


def scorecard(
    service: Annotated[str, typer.Argument(metavar="SERVICE", help="A service in ballast.yaml.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Print the service's scorecard panels, queried now."""
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
    rows = run_async(_read(config, service))
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


async def _read(config: BallastConfig, service: str) -> list[dict[str, Any]]:
    import httpx

    from bot.incidents.read_model import panel_value
    from bot.verification.prometheus import PrometheusClient
    from bot.verification.scorecard import read_panels

    panels = config.scorecard_for(service)
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
