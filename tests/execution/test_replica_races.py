"""Two replicas racing on the same incidents: no deadlock, no 500, nothing left ``running``.

The sequence of issue 15: twelve concurrent ``run`` requests spread over two replicas on four
incidents. Before one lock order (incident → execution → timer, ``store.executions.locked``),
the claim of one request (incident, then execution) and the record of another (execution, then
the incident through the timeline's foreign key) deadlocked: 500s, and an execution left
``running`` with its control already written. Two apps here share one PostgreSQL schema on
engines of their own, so their transactions are as concurrent as two processes'.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from typing import Any

import httpx
import pytest

from bot.config import BallastConfig
from tests.conftest import DatabaseUnderTest
from tests.principals import BRIDGE

pytestmark = pytest.mark.postgres

TOKEN = BRIDGE.headers  # may name the acting owner in the body
ROUNDS = 4
INCIDENTS = 4
# Per incident and round: both replicas ask for the same mitigation, and one for another.
REQUESTS = (("pause-batch", 0, "U0OWNER1"), ("pause-batch", 1, "U0OWNER2"), ("supervised", 0))


@pytest.fixture
def test_database(postgres_database: DatabaseUnderTest) -> DatabaseUnderTest:
    """Both replicas on one PostgreSQL database (SQLite is one process)."""
    return postgres_database


class ControlPlane:
    """The far side of http_request for both replicas: answers after a short random wait, so
    applies and claims interleave."""

    def __init__(self) -> None:
        self.keys: list[str] = []
        self.rng = random.Random(15)

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(self.rng.uniform(0, 0.02))
        self.keys.append(request.headers.get("idempotency-key", ""))
        return httpx.Response(200, json={"ok": True})


async def replica(make_harness: Any, plane: ControlPlane) -> Any:
    config = BallastConfig.model_validate(
        {
            "teams": {"@oncall": ["U0OWNER2", "U0OWNER3"]},
            "http": {"allowed_hosts": ["control.test"], "allowed_secrets": ["CONTROL_TOKEN"]},
        }
    )
    return await make_harness(
        api_token="api-token",
        config=config,
        http_transport=httpx.MockTransport(plane),
        environ={"CONTROL_TOKEN": "token"},
        retry_backoff=0.0,
    )


async def test_concurrent_runs_and_undos_over_two_replicas(make_harness: Any) -> None:
    plane = ControlPlane()
    a = await replica(make_harness, plane)
    b = await replica(make_harness, plane)
    replicas = (a, b)
    alerts = [
        {"labels": {"alertname": "ToolFailing", "service": f"svc-{n}", "tool": "search"}}
        for n in range(INCIDENTS)
    ]
    assert (await a.client.post("/webhooks/generic", json={"alerts": alerts})).status_code == 200
    incidents: list[int] = []
    for _ in range(200):  # either replica's engine may have claimed the alerts
        await a.settle()
        listed = (await a.client.get("/api/v1/incidents", headers=TOKEN)).json()["incidents"]
        incidents = sorted(int(i["id"]) for i in listed)
        if len(incidents) == INCIDENTS:
            break
        await asyncio.sleep(0.05)
    assert len(incidents) == INCIDENTS

    statuses: Counter[int] = Counter()

    stagger = random.Random(1315)

    async def call(h: Any, path: str, actor: str) -> None:
        # Spread over the control plane's answer time, so claims meet other requests' records.
        await asyncio.sleep(stagger.uniform(0, 0.03))
        response = await h.client.post(path, json={"actor": actor}, headers=TOKEN)
        statuses[response.status_code] += 1
        assert response.status_code < 500, response.text

    for round_no in range(ROUNDS):
        runs = []
        for k, incident in enumerate(incidents):
            for mitigation, side, *actor in REQUESTS:
                path = f"/api/v1/incidents/{incident}/mitigations/{mitigation}/run"
                h = replicas[(side + k + round_no) % 2]
                runs.append(call(h, path, actor[0] if actor else "U0OWNER3"))
        # Meanwhile both replicas keep asking again, so claims meet records.
        done = asyncio.Event()

        async def pressure(h: Any, done: asyncio.Event = done) -> None:
            while not done.is_set():
                incident = stagger.choice(incidents)
                await call(
                    h, f"/api/v1/incidents/{incident}/mitigations/pause-batch/run", "U0OWNER1"
                )

        pressing = [asyncio.create_task(pressure(h)) for h in replicas]
        await asyncio.gather(*runs)
        done.set()
        await asyncio.gather(*pressing)
        states = await execution_states(a, incidents)
        assert set(states.values()) == {"applied"}, (round_no, states)
        undos = [
            call(h, f"/api/v1/incidents/{incident}/mitigations/{mitigation}/undo", "U0OWNER1")
            for incident in incidents
            for mitigation in ("pause-batch", "supervised")
            for h in replicas
        ]
        await asyncio.gather(*undos)
        states = await execution_states(b, incidents)
        assert set(states.values()) == {"undone"}, (round_no, states)

    assert statuses[500] == 0
    for incident in incidents:
        timeline = (await b.client.get(f"/api/v1/incidents/{incident}", headers=TOKEN)).json()[
            "timeline"
        ]
        applied = Counter(
            (e["details"]["mitigation_id"], e["details"]["idempotency_key"])
            for e in timeline
            if e["kind"] == "mitigation_applied"
        )
        mine = {k: n for k, n in applied.items() if k[0] in ("pause-batch", "supervised")}
        assert len(mine) == 2 * ROUNDS, mine  # each generation applied ...
        assert set(mine.values()) == {1}, mine  # ... once
        undone = [e for e in timeline if e["kind"] == "mitigation_undone"]
        assert len(undone) == 2 * ROUNDS
    # Each generation's http_request reached the control plane once, with its own key.
    pause_keys = [k for k in plane.keys if k.startswith("ballast:") and ":pause-batch:" in k]
    assert len(pause_keys) == len(set(pause_keys)) == INCIDENTS * ROUNDS
    undo_keys = [k for k in plane.keys if k.startswith("undo:")]
    assert len(undo_keys) == len(set(undo_keys)) == INCIDENTS * ROUNDS


async def execution_states(h: Any, incidents: list[int]) -> dict[tuple[int, str], str]:
    states = {}
    for incident in incidents:
        body = (await h.client.get(f"/api/v1/incidents/{incident}", headers=TOKEN)).json()
        for m in body["mitigations"]:
            if m["id"] in ("pause-batch", "supervised"):
                states[(incident, m["id"])] = m["state"]
    return states
