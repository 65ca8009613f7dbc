"""``enable_tool`` as a runbook step: through the executor, against the built-in control store.

The auto mitigation turns the tool off when the incident opens; a human's approval turns it
back on (medium risk: one owner), and undo turns it off again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.errors import PolicyError
from bot.execution.results import ExecutionState

KEY = "svc-a.tools.search.enabled"
ALERT = {
    "labels": {"alertname": "ToolFailing", "service": "svc-a", "tool": "search"},
    "status": "firing",
    "starts_at": "2026-11-27T02:00:00Z",
}


@pytest.fixture
def runbooks_dir() -> Path:
    return Path(__file__).with_name("enable_runbooks")


async def test_enable_tool_turns_the_tool_back_on_and_undo_turns_it_off(
    make_harness: Any,
) -> None:
    h = await make_harness()
    response = await h.client.post("/webhooks/generic", json={"alerts": [ALERT]})
    assert response.status_code == 200
    await h.settle()
    [incident] = (await h.client.get("/api/v1/incidents")).json()["incidents"]
    controls = h.services.controls
    assert await controls.read(KEY) is False  # the auto step disabled it

    executor = h.services.executor
    with pytest.raises(PolicyError, match="U0STRANGER is not an owner"):
        await executor.run(incident["id"], "enable-tool", "U0STRANGER")
    assert await controls.read(KEY) is False

    enabled = await executor.run(incident["id"], "enable-tool", "U0OWNER1")
    assert enabled.state == ExecutionState.APPLIED
    assert enabled.risk == "medium"
    assert await controls.read(KEY) is True
    value = await controls.get(KEY)
    assert value is not None
    assert (value.updated_by, value.version) == ("U0OWNER1", 2)

    undone = await executor.undo(incident["id"], "enable-tool", "U0OWNER2")
    assert undone.state == ExecutionState.UNDONE
    assert await controls.read(KEY) is False

    detail = (await h.client.get(f"/api/v1/incidents/{incident['id']}")).json()
    kinds = [entry["kind"] for entry in detail["timeline"]]
    assert "mitigation_applied" in kinds
    assert "mitigation_undone" in kinds
    [mitigation] = [m for m in detail["mitigations"] if m["id"] == "enable-tool"]
    assert (mitigation["state"], mitigation["before"], mitigation["after"]) == (
        "undone",
        False,
        True,
    )
