"""The scorecard with the real Prometheus, on SQLite and PostgreSQL: snapshots at open, after
the verification and at resolve in the timeline and the API's ``scorecards``; the compact
scorecard with changes since opening in the Slack message; the before/during/after table in
the postmortem; ``ballast scorecard SERVICE``."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import yaml
from typer.testing import CliRunner

from bot.cli import build_cli
from bot.config import BallastConfig
from bot.incidents.read_model import IncidentDetail
from bot.slack.incident_message import render_incident
from bot.slack.view import build_view
from tests.verification.conftest import LiveClock
from tests.verification.prometheus_server import Exporter, PrometheusUnderTest

METRIC = "test_tool_error_ratio"


def config_of(url: str, tool: str) -> dict[str, Any]:
    return {
        "teams": {"@oncall": ["U0OWNER1"]},
        "prometheus": {"url": url, "timeout": 2},
        "services": {
            "svc": {
                "scorecard": [
                    {
                        "name": "tool failure rate",
                        "query": f'max({METRIC}{{tool="{tool}"}})',
                        "unit": "%",
                        "scale": 100,
                        "good": "down",
                    },
                    {
                        "name": "groundedness",
                        "query": f'max(test_groundedness{{tool="{tool}"}})',
                        "good": "up",
                    },
                    {
                        "name": "missing",
                        "query": "absent_metric_xyz",
                        "unit": "USD",
                        "good": "down",
                    },
                ]
            }
        },
    }


async def test_snapshots_in_api_slack_postmortem_and_cli(
    make_harness: Any,
    prometheus: PrometheusUnderTest,
    exporter: Exporter,
    clock: LiveClock,
    tmp_path: Path,
) -> None:
    tool = f"t{uuid.uuid4().hex[:8]}"
    exporter.set(METRIC, 0.31, tool=tool)
    exporter.set("test_groundedness", 0.62, tool=tool)
    prometheus.wait_for(f'{METRIC}{{tool="{tool}"}}', 0.31)
    prometheus.wait_for(f'test_groundedness{{tool="{tool}"}}', 0.62)
    raw = config_of(prometheus.url, tool)
    h = await make_harness(config=BallastConfig.model_validate(raw))
    alert = {"labels": {"alertname": "ToolFailing", "service": "svc", "tool": tool}}
    assert (await h.client.post("/webhooks/generic", json={"alerts": [alert]})).status_code == 200
    await h.settle()
    await h.services.scorecards.drain()
    incident = 1

    exporter.set(METRIC, 0.0, tool=tool)
    exporter.set("test_groundedness", 0.9, tool=tool)
    prometheus.wait_for(f'{METRIC}{{tool="{tool}"}}', 0.0)
    prometheus.wait_for(f'test_groundedness{{tool="{tool}"}}', 0.9)
    clock.advance(seconds=1.5)
    assert await h.services.timers.tick() == 1  # recovered, then a snapshot

    resolved = await h.client.post(f"/api/v1/incidents/{incident}/resolve", json={})
    assert resolved.status_code == 200, resolved.text
    body = (await h.client.get(f"/api/v1/incidents/{incident}")).json()
    snapshots = body["scorecards"]
    assert [(s["moment"], s["label"]) for s in snapshots] == [
        ("open", "opened"),
        ("verification", "disable-tool"),
        ("resolve", "resolved"),
    ]
    values = [{p["name"]: p["value"] for p in s["panels"]} for s in snapshots]
    assert values[0] == {"tool failure rate": 0.31, "groundedness": 0.62, "missing": None}
    assert values[1]["tool failure rate"] == 0.0
    assert values[1]["groundedness"] == 0.9
    assert snapshots[0]["panels"][2]["reason"].startswith("no data")
    assert all(s["taken_at"] and p["unit"] is not None for s in snapshots for p in s["panels"])
    assert [e["kind"] for e in body["timeline"]].count("scorecard") == 3
    # Taken once per moment, whatever replays it.
    assert not await h.services.scorecards.snapshot(incident, "open", "opened")

    # Slack: the compact scorecard, with the change since opening and which way is good.
    detail = IncidentDetail.model_validate(body)
    message = str(render_incident(build_view(detail, None)).as_kwargs()["blocks"])
    assert "tool failure rate 31% → 0% (better)" in message
    assert "groundedness 0.62 → 0.9 (better)" in message
    assert "missing ? → ?" in message

    # The postmortem: before / during / after.
    draft = await h.client.get(
        f"/api/v1/incidents/{incident}/postmortem", headers={"accept": "text/markdown"}
    )
    assert draft.status_code == 200, draft.text
    assert "| tool failure rate | 31% | 0% | 0% | better |" in draft.text
    assert "| groundedness | 0.62 | 0.9 | 0.9 | better |" in draft.text

    # The CLI: the scorecard now, from the same config.
    path = tmp_path / "ballast.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    env = {"BALLAST_CONFIG": str(path)}

    def cli(*args: str) -> Any:  # a thread: the command runs its own event loop
        return CliRunner().invoke(build_cli(), list(args), env=env)

    result = await asyncio.to_thread(cli, "scorecard", "svc", "--json")
    assert result.exit_code == 0, result.output
    assert '"shown": "0%"' in result.output
    assert '"shown": "0.9"' in result.output
    table = await asyncio.to_thread(cli, "scorecard", "svc")
    assert "tool failure rate" in table.output
    assert "lower is better" in table.output
    unknown = await asyncio.to_thread(cli, "scorecard", "nope")
    assert unknown.exit_code != 0
    assert "services with one: svc" in unknown.output


async def test_a_runbook_picks_panels_by_name_and_adds_its_own(
    make_harness: Any,
    prometheus: PrometheusUnderTest,
    exporter: Exporter,
    runbooks_dir: Path,
    tmp_path: Path,
) -> None:
    """``scorecard: {show, panels}`` in a runbook: its incidents show the service's panels it
    names, in its order, then its own; ``ballast scorecard --panel`` picks by name too."""
    tool = f"t{uuid.uuid4().hex[:8]}"
    exporter.set(METRIC, 0.31, tool=tool)
    exporter.set("test_groundedness", 0.62, tool=tool)
    prometheus.wait_for(f'test_groundedness{{tool="{tool}"}}', 0.62)
    folder = tmp_path / "runbooks"
    folder.mkdir()
    runbook = yaml.safe_load((runbooks_dir / "svc-tool-failure.yaml").read_text())
    runbook["scorecard"] = {
        "show": ["groundedness", "tool failure rate"],
        "panels": [
            {"name": "own ratio", "query": f'max({METRIC}{{tool="{tool}"}}) * 2', "good": "down"}
        ],
    }
    (folder / "svc.yaml").write_text(yaml.safe_dump(runbook), encoding="utf-8")
    raw = config_of(prometheus.url, tool)
    h = await make_harness(config=BallastConfig.model_validate(raw), runbooks=folder)
    alert = {"labels": {"alertname": "ToolFailing", "service": "svc", "tool": tool}}
    assert (await h.client.post("/webhooks/generic", json={"alerts": [alert]})).status_code == 200
    await h.settle()
    await h.services.scorecards.drain()
    body = (await h.client.get("/api/v1/incidents/1")).json()
    panels = body["scorecards"][0]["panels"]
    assert [(p["name"], p["value"]) for p in panels] == [
        ("groundedness", 0.62),
        ("tool failure rate", 0.31),
        ("own ratio", 0.62),
    ]
    # Slack's compact scorecard shows the runbook's choice, not the service's third panel.
    blocks = str(render_incident(build_view(IncidentDetail.model_validate(body), None)).as_kwargs())
    assert "groundedness 0.62" in blocks
    assert "own ratio 0.62" in blocks
    assert "missing" not in blocks

    path = tmp_path / "ballast.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")

    def cli(*args: str) -> Any:
        return CliRunner().invoke(build_cli(), list(args), env={"BALLAST_CONFIG": str(path)})

    picked = await asyncio.to_thread(cli, "scorecard", "svc", "--panel", "groundedness")
    assert picked.exit_code == 0, picked.output
    assert picked.output.splitlines()[1:] == ["  groundedness          0.62   (higher is better)"]
    wrong = await asyncio.to_thread(cli, "scorecard", "svc", "--panel", "groundednes")
    assert wrong.exit_code != 0
    assert "unknown panel 'groundednes' in svc's scorecard (ballast.yaml); did you mean " in (
        " ".join(wrong.output.split())
    )
