"""Did it work, end to end with the real Prometheus, on SQLite and PostgreSQL: a mitigation
with ``verify:`` is applied automatically, its ``verify`` timers fire, and the verdict with the
values before and after lands in the timeline, the API's ``verifications`` and the thread;
``not_recovered`` moves the ladder to the next mitigation, ``worse`` undoes an auto one, and a
Prometheus that stops gives ``unknown`` while the incident carries on."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.config import BallastConfig
from bot.incidents.changes import IncidentChange
from tests.conftest import need_binary
from tests.verification.conftest import LiveClock
from tests.verification.prometheus_server import Exporter, PrometheusUnderTest, running

METRIC = "test_tool_error_ratio"


class Thread:
    """The notes the incident's listeners get: what the Slack thread would say."""

    def __init__(self) -> None:
        self.notes: list[str] = []

    async def incidents_changed(self, changes: list[IncidentChange]) -> None:
        for change in changes:
            self.notes.extend(note.text for note in change.notes)


async def start(make_harness: Any, url: str) -> tuple[Any, Thread]:
    config = BallastConfig.model_validate(
        {"teams": {"@oncall": ["U0OWNER1"]}, "prometheus": {"url": url, "timeout": 2}}
    )
    h = await make_harness(config=config)
    thread = Thread()
    h.services.bus.subscribe(thread)
    return h, thread


async def open_incident(h: Any, tool: str) -> int:
    alert = {"labels": {"alertname": "ToolFailing", "service": "svc", "tool": tool}}
    assert (await h.client.post("/webhooks/generic", json={"alerts": [alert]})).status_code == 200
    await h.settle()
    body = (await h.client.get("/api/v1/incidents")).json()
    [incident] = [i for i in body["incidents"] if i["group_labels"].get("tool") == tool]
    return int(incident["id"])


async def detail(h: Any, incident: int) -> dict[str, Any]:
    response = await h.client.get(f"/api/v1/incidents/{incident}")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def mitigation(body: dict[str, Any], mitigation_id: str) -> dict[str, Any]:
    [found] = [m for m in body["mitigations"] if m["id"] == mitigation_id]
    return found


def unique_tool() -> str:
    return f"t{uuid.uuid4().hex[:8]}"


async def test_recovered(
    make_harness: Any, prometheus: PrometheusUnderTest, exporter: Exporter, clock: LiveClock
) -> None:
    tool = unique_tool()
    query = f'{METRIC}{{tool="{tool}"}}'
    exporter.set(METRIC, 0.31, tool=tool)
    prometheus.wait_for(query, 0.31)
    h, thread = await start(make_harness, prometheus.url)
    incident = await open_incident(h, tool)
    assert mitigation(await detail(h, incident), "disable-tool")["state"] == "applied"

    exporter.set(METRIC, 0.0, tool=tool)
    prometheus.wait_for(query, 0.0)
    clock.advance(seconds=1.5)
    assert await h.services.timers.tick() == 1

    body = await detail(h, incident)
    [verification] = body["verifications"]
    assert verification["mitigation_id"] == "disable-tool"
    assert verification["verdict"] == "recovered"
    assert verification["checked_at"]
    [value] = verification["values"]
    assert (value["before"], value["after"], value["condition"]) == (0.31, 0.0, "< 0.05")
    assert value["query"] == f'max({METRIC}{{tool="{tool}"}})'
    assert [e["kind"] for e in body["timeline"]].count("mitigation_verified") == 1
    assert mitigation(body, "disable-tool")["verdict"] == "recovered"
    assert mitigation(body, "supervised")["state"] == "not_run"  # no ladder on recovery
    assert any(
        "tool failure rate 0.31 → 0 (< 0.05)" in n and "recovered" in n for n in thread.notes
    )
    # Nothing left to check: no timer due, however long we wait.
    clock.advance(seconds=30)
    assert await h.services.timers.tick() == 0


async def test_not_recovered_moves_the_ladder_to_the_next_mitigation(
    make_harness: Any, prometheus: PrometheusUnderTest, exporter: Exporter, clock: LiveClock
) -> None:
    tool = unique_tool()
    exporter.set(METRIC, 0.4, tool=tool)
    prometheus.wait_for(f'{METRIC}{{tool="{tool}"}}', 0.4)
    h, thread = await start(make_harness, prometheus.url)
    incident = await open_incident(h, tool)

    clock.advance(seconds=1.2)
    assert await h.services.timers.tick() == 1  # check 1: not yet, the next is scheduled
    assert (await detail(h, incident))["verifications"] == []
    clock.advance(seconds=4)
    assert await h.services.timers.tick() == 1  # past `within`: the verdict

    body = await detail(h, incident)
    [verification] = body["verifications"]
    assert verification["verdict"] == "not_recovered"
    assert verification["values"][0]["before"] == verification["values"][0]["after"] == 0.4
    ladder = [e for e in body["timeline"] if e["kind"] == "mitigation_ladder"]
    assert [e["summary"] for e in ladder] == [
        "disable-tool not_recovered → next: supervised (approve)"
    ]
    # The next mitigation goes through its own policy: `approve`, so its owners are asked.
    nxt = mitigation(body, "supervised")
    assert (nxt["state"], nxt["requested_by"]) == ("awaiting_approval", "ballast")
    assert mitigation(body, "disable-tool")["state"] == "applied"  # not undone
    assert any("not_recovered" in n for n in thread.notes)
    # Nothing loops: no further checks, no second ladder step.
    clock.advance(seconds=60)
    assert await h.services.timers.tick() == 0
    body = await detail(h, incident)
    assert len([e for e in body["timeline"] if e["kind"] == "mitigation_ladder"]) == 1


async def test_worse_undoes_an_auto_mitigation(
    make_harness: Any, prometheus: PrometheusUnderTest, exporter: Exporter, clock: LiveClock
) -> None:
    tool = unique_tool()
    query = f'{METRIC}{{tool="{tool}"}}'
    exporter.set(METRIC, 0.2, tool=tool)
    prometheus.wait_for(query, 0.2)
    h, _ = await start(make_harness, prometheus.url)
    incident = await open_incident(h, tool)
    controls = (await h.client.get("/api/v1/controls")).json()
    assert any(c["value"] is False for c in controls["controls"] if tool in c["key"])

    exporter.set(METRIC, 0.5, tool=tool)
    prometheus.wait_for(query, 0.5)
    clock.advance(seconds=1.2)
    assert await h.services.timers.tick() == 1  # worse ends the checks at once

    body = await detail(h, incident)
    assert [v["verdict"] for v in body["verifications"]] == ["worse"]
    assert mitigation(body, "disable-tool")["state"] == "undone"
    assert mitigation(body, "supervised")["state"] == "not_run"
    kinds = [e["kind"] for e in body["timeline"]]
    assert kinds.index("mitigation_verified") < kinds.index("mitigation_ladder")
    assert kinds.index("mitigation_ladder") < kinds.index("mitigation_undone")
    controls = (await h.client.get("/api/v1/controls")).json()
    assert not any(c["value"] is False for c in controls["controls"] if tool in c["key"])


@pytest.fixture
def own_prometheus(tmp_path: Path) -> Iterator[tuple[PrometheusUnderTest, Exporter]]:
    yield from running(need_binary("prometheus"), tmp_path / "prometheus")


async def test_prometheus_stopped_mid_incident_is_unknown_and_the_incident_carries_on(
    make_harness: Any, own_prometheus: tuple[PrometheusUnderTest, Exporter], clock: LiveClock
) -> None:
    prometheus, exporter = own_prometheus
    tool = unique_tool()
    exporter.set(METRIC, 0.4, tool=tool)
    prometheus.wait_for(f'{METRIC}{{tool="{tool}"}}', 0.4)
    h, thread = await start(make_harness, prometheus.url)
    incident = await open_incident(h, tool)
    prometheus.stop()

    clock.advance(seconds=1.2)
    assert await h.services.timers.tick() == 1
    clock.advance(seconds=4)
    assert await h.services.timers.tick() == 1
    body = await detail(h, incident)
    [verification] = body["verifications"]
    assert verification["verdict"] == "unknown"
    assert "cannot reach Prometheus" in verification["values"][0]["reason"]
    assert not [e for e in body["timeline"] if e["kind"] == "mitigation_ladder"]
    assert any("unknown" in n for n in thread.notes)
    # The incident carries on: still mitigating, and people can resolve it.
    assert body["status"] == "mitigating"
    resolved = await h.client.post(f"/api/v1/incidents/{incident}/resolve", json={})
    assert resolved.status_code == 200, resolved.text


async def test_a_verdict_after_the_resolve_is_recorded_without_a_ladder_step(
    make_harness: Any, prometheus: PrometheusUnderTest, exporter: Exporter, clock: LiveClock
) -> None:
    """The mitigation worked faster than the alert's resolve arrived: the check that fires
    after the resolve still says recovered; one never final by `within` says nothing."""
    tool = unique_tool()
    query = f'{METRIC}{{tool="{tool}"}}'
    exporter.set(METRIC, 0.4, tool=tool)
    prometheus.wait_for(query, 0.4)
    h, _ = await start(make_harness, prometheus.url)
    incident = await open_incident(h, tool)
    resolved = await h.client.post(f"/api/v1/incidents/{incident}/resolve", json={})
    assert resolved.status_code == 200, resolved.text

    clock.advance(seconds=1.2)  # still failing: not final, checked again until `within`
    assert await h.services.timers.tick() == 1
    clock.advance(seconds=4)
    assert await h.services.timers.tick() == 1  # past `within`: no verdict, no ladder
    assert (await detail(h, incident))["verifications"] == []
    clock.advance(seconds=30)
    assert await h.services.timers.tick() == 0

    second = unique_tool()
    exporter.set(METRIC, 0.4, tool=second)
    prometheus.wait_for(f'{METRIC}{{tool="{second}"}}', 0.4)
    other = await open_incident(h, second)
    resolved = await h.client.post(f"/api/v1/incidents/{other}/resolve", json={})
    assert resolved.status_code == 200, resolved.text
    exporter.set(METRIC, 0.0, tool=second)
    prometheus.wait_for(f'{METRIC}{{tool="{second}"}}', 0.0)
    clock.advance(seconds=1.5)
    assert await h.services.timers.tick() == 1
    body = await detail(h, other)
    [verification] = body["verifications"]
    assert verification["verdict"] == "recovered"
    assert not [e for e in body["timeline"] if e["kind"] == "mitigation_ladder"]
