"""The JSON API: listing, filters, acknowledge and resolve with actor and bearer token."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from tests.conftest import FIXTURES, Clock
from tests.principals import BRIDGE

AM = FIXTURES / "alertmanager-captured"
TOKEN = BRIDGE.headers  # may name the acting person in the body


async def open_two(h: Any) -> None:
    await h.post_fixture("alertmanager", AM / "firing-group-2-alerts.json")
    await h.post_fixture("alertmanager", AM / "prometheus-firing.json")
    await h.settle()


async def test_list_filters(make_harness: Any) -> None:
    h = await make_harness(api_token="api-token-1")
    await open_two(h)
    get = h.client.get
    assert len((await get("/api/v1/incidents")).json()["incidents"]) == 2
    by_service = (await get("/api/v1/incidents", params={"service": "checkout"})).json()
    assert [i["runbook_id"] for i in by_service["incidents"]] == ["checkout/high-error-rate"]
    by_runbook = (
        await get("/api/v1/incidents", params={"runbook": "support-assistant/low-groundedness"})
    ).json()
    assert [i["service"] for i in by_runbook["incidents"]] == ["support-assistant"]
    resolved = (await get("/api/v1/incidents", params={"status": "resolved"})).json()
    assert resolved["incidents"] == []
    bad = await get("/api/v1/incidents", params={"status": "on-fire"})
    assert bad.status_code == 422


async def test_acknowledge_and_resolve(make_harness: Any, clock: Clock) -> None:
    h = await make_harness(api_token="api-token-1")
    await open_two(h)
    [incident, second] = (await h.client.get("/api/v1/incidents")).json()["incidents"]
    url = f"/api/v1/incidents/{incident['id']}"

    refused = await h.anonymous.post(f"{url}/acknowledge", json={"actor": "U024BE7LH"})
    assert refused.status_code == 401
    not_a_string = await h.client.post(f"{url}/acknowledge", json={"actor": 5}, headers=TOKEN)
    assert not_a_string.status_code == 422

    clock.advance(minutes=3)
    acked = await h.client.post(f"{url}/acknowledge", json={"actor": "U024BE7LH"}, headers=TOKEN)
    assert acked.status_code == 200
    body = acked.json()
    assert body["status"] == "acknowledged"
    assert body["acknowledged_by"] == "U024BE7LH"
    assert body["phases_seconds"]["acknowledge"] == 180.0
    again = await h.client.post(f"{url}/acknowledge", json={"actor": "someone"}, headers=TOKEN)
    assert again.json()["acknowledged_by"] == "U024BE7LH"  # idempotent

    clock.advance(minutes=7)
    done = await h.client.post(
        f"{url}/resolve", json={"actor": "U024BE7LH", "reason": "rolled back"}, headers=TOKEN
    )
    assert done.status_code == 200
    body = done.json()
    assert body["status"] == "resolved"
    assert body["resolved_by"] == "U024BE7LH"
    assert body["phases_seconds"]["resolve"] == 600.0
    timeline = [(e["kind"], e["actor"]) for e in body["timeline"]]
    assert ("acknowledged", "U024BE7LH") in timeline
    assert timeline[-1] == ("resolved", "U024BE7LH")
    assert "still firing" in body["timeline"][-1]["summary"]

    retried = await h.client.post(f"{url}/acknowledge", json={"actor": "x"}, headers=TOKEN)
    assert retried.status_code == 200  # a retried ack of an incident acked before: no change
    assert retried.json()["acknowledged_by"] == "U024BE7LH"

    other = f"/api/v1/incidents/{second['id']}"
    assert (await h.client.post(f"{other}/resolve", json={"actor": "a"}, headers=TOKEN)).is_success
    late_ack = await h.client.post(f"{other}/acknowledge", json={"actor": "x"}, headers=TOKEN)
    assert late_ack.status_code == 409
    assert "incident is resolved" in late_ack.json()["detail"]


async def test_reads_and_writes_refused_without_credentials(make_harness: Any) -> None:
    h = await make_harness()
    await open_two(h)
    response = await h.anonymous.post("/api/v1/incidents/1/acknowledge", json={"actor": "a"})
    assert response.status_code == 401
    assert "Authorization: Bearer" in response.json()["detail"]
    assert response.headers["www-authenticate"] == "Bearer"
    assert (await h.anonymous.get("/api/v1/incidents")).status_code == 401
    assert (await h.as_("reader").get("/api/v1/incidents")).status_code == 200
    writes = await h.as_("reader").post("/api/v1/incidents/1/acknowledge", json={})
    assert writes.status_code == 403
    assert "lacks the responder role" in writes.json()["detail"]


async def test_unknown_incident_is_404(make_harness: Any) -> None:
    h = await make_harness(api_token="api-token-1")
    assert (await h.client.get("/api/v1/incidents/999")).status_code == 404
    response = await h.client.post(
        "/api/v1/incidents/999/resolve", json={"actor": "a"}, headers=TOKEN
    )
    assert response.status_code == 404


async def test_health_ready_openapi(make_harness: Any) -> None:
    h = await make_harness()
    assert (await h.client.get("/healthz")).json() == {"status": "ok"}
    ready = await h.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"]["database"] == "ok"
    spec = (await h.client.get("/openapi.json")).json()
    for path in (
        "/webhooks/alertmanager",
        "/webhooks/grafana",
        "/webhooks/generic",
        "/api/v1/incidents",
        "/api/v1/incidents/{incident_id}",
        "/api/v1/incidents/{incident_id}/acknowledge",
        "/api/v1/incidents/{incident_id}/resolve",
        "/api/v1/runbooks",
        "/api/v1/runbooks/reload",
    ):
        assert path in spec["paths"], path


async def test_runbooks_list_and_reload(make_harness: Any, tmp_path: Any) -> None:
    source = Path(__file__).with_name("runbooks")
    folder = tmp_path / "runbooks"
    shutil.copytree(source, folder)
    h = await make_harness(api_token="api-token-1", runbooks=folder)
    listed = (await h.client.get("/api/v1/runbooks")).json()
    assert {r["id"] for r in listed["runbooks"]} == {
        "checkout/high-error-rate",
        "support-assistant/low-groundedness",
        "platform/high-memory",
    }
    version = listed["version"]

    (folder / "broken.yaml").write_text("id: broken\ntitle: x\nsevrity: sev1\n")
    refused = await h.client.post("/api/v1/runbooks/reload", headers=TOKEN)
    assert refused.status_code == 422
    assert refused.json()["reloaded"] is False
    assert any("broken.yaml:3:1" in e for e in refused.json()["errors"])
    still = (await h.client.get("/api/v1/runbooks")).json()
    assert still["version"] == version
    assert len(still["runbooks"]) == 3

    (folder / "broken.yaml").unlink()
    (folder / "grafana-memory.yaml").unlink()
    ok = await h.client.post("/api/v1/runbooks/reload", headers=TOKEN)
    assert ok.status_code == 200, ok.text
    after = (await h.client.get("/api/v1/runbooks")).json()
    assert after["version"] > version
    assert len(after["runbooks"]) == 2
    assert (await h.anonymous.post("/api/v1/runbooks/reload")).status_code == 401
    assert (await h.as_("responder").post("/api/v1/runbooks/reload")).status_code == 403
