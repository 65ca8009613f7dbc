"""A scripted incident driven through the HTTP API, on the test clock."""

from __future__ import annotations

from typing import Any

from tests.conftest import Clock
from tests.principals import BRIDGE

TOKEN = BRIDGE.headers  # may name the acting person in the body


def alert(status: str = "firing", starts_at: str = "2026-11-27T03:00:30Z") -> dict[str, Any]:
    return {
        "labels": {"alertname": "ToolFailing", "service": "svc-a", "tool": "search"},
        "status": status,
        "starts_at": starts_at,
    }


async def send(h: Any, *alerts: dict[str, Any]) -> None:
    response = await h.client.post("/webhooks/generic", json={"alerts": list(alerts)})
    assert response.status_code == 200, response.text
    await h.settle()


async def post(h: Any, path: str, actor: str) -> Any:
    response = await h.client.post(path, json={"actor": actor}, headers=TOKEN)
    assert response.status_code == 200, response.text
    return response.json()


async def only_incident(h: Any) -> int:
    [incident] = (await h.client.get("/api/v1/incidents")).json()["incidents"]
    return int(incident["id"])


async def scripted_incident(h: Any, clock: Clock) -> int:
    """Alert, auto mitigation, ack, approved mitigation, undo, signal recovers, resolve."""
    controls = h.services.controls
    for key, value in (
        ("svc-a.model", "gpt-4.1-2025-04-14"),
        ("svc-a.prompt_version", "support-v41"),
        ("svc-a.retrieval_index", "kb-2026-11-20"),
    ):
        await controls.write(key, value, actor="U0DEPLOYER", reason="release 2026.11.3")
    recorded = await h.client.post(
        "/api/v1/changes",
        json={
            "service": "svc",  # the runbook's service (its controls are svc-a's)
            "kind": "tool_schema",
            "version": "search|v3 `beta`",  # a pipe and backticks: the table must hold
            "previous": "search-v2",
            "by": "release-bot",
            "link": "https://ci.example.com/builds/77",
            "external_id": "build-77",
        },
    )
    assert recorded.status_code == 201, recorded.text
    clock.advance(minutes=1)  # 03:01: the alert arrives; disable-tool runs at once (auto)
    await send(h, alert())
    incident = await only_incident(h)
    clock.advance(minutes=3)  # 03:04
    await post(h, f"/api/v1/incidents/{incident}/acknowledge", "U0OWNER2")
    clock.advance(minutes=6)  # 03:10: a medium-risk mitigation, by an owner
    await post(h, f"/api/v1/incidents/{incident}/mitigations/supervised/run", "U0OWNER3")
    clock.advance(minutes=10)  # 03:20
    await post(h, f"/api/v1/incidents/{incident}/mitigations/supervised/undo", "U0OWNER2")
    clock.advance(minutes=5)  # 03:25: the signal recovers
    await send(h, alert("resolved") | {"ends_at": "2026-11-27T03:24:00Z"})
    clock.advance(minutes=2)  # 03:27
    await post(h, f"/api/v1/incidents/{incident}/mitigations/disable-tool/undo", "U0OWNER2")
    return incident
