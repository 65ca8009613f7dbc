"""SIGKILL while alerts arrive: every alert that got a 2xx survives and is processed once."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import httpx
import pytest

from tests.e2e.processes import wait_until
from tests.principals import POST_ALERTS, READ

pytestmark = pytest.mark.slow

ALERTS_PER_REQUEST = 5


def payload(request_no: int) -> dict[str, Any]:
    return {
        "alerts": [
            {
                "labels": {
                    "alertname": "CrashTest",
                    "service": "crash",
                    "n": str(request_no * ALERTS_PER_REQUEST + i),
                },
                "status": "firing",
                "starts_at": "2026-11-27T02:00:00Z",
            }
            for i in range(ALERTS_PER_REQUEST)
        ]
    }


def test_sigkill_during_ingest_loses_nothing_acknowledged(make_server: Any) -> None:
    server = make_server()
    server.start()
    acknowledged: set[str] = set()
    sent_at_all: set[str] = set()
    lock = threading.Lock()
    stop = threading.Event()
    counter = iter(range(1_000_000))

    def sender() -> None:
        with httpx.Client(base_url=server.url, headers=POST_ALERTS, timeout=5) as client:
            while not stop.is_set():
                with lock:
                    n = next(counter)
                body = payload(n)
                names = {a["labels"]["n"] for a in body["alerts"]}
                with lock:
                    sent_at_all.update(names)
                try:
                    response = client.post("/webhooks/generic", json=body)
                except httpx.HTTPError:
                    continue
                if response.status_code == 200:
                    with lock:
                        acknowledged.update(names)

    threads = [threading.Thread(target=sender) for _ in range(4)]
    for thread in threads:
        thread.start()
    wait_until(lambda: len(acknowledged) >= 1000, 30, "1,000 acknowledged alerts")
    server.kill()  # mid-stream: requests are in flight
    time.sleep(0.3)
    stop.set()
    for thread in threads:
        thread.join(10)

    server.start(timeout=60)  # a hang guard, not a goal: restart time is a benchmark's job

    def incident() -> Any:
        found = httpx.get(f"{server.url}/api/v1/incidents", headers=READ, timeout=5).json()[
            "incidents"
        ]
        if len(found) != 1:
            return None
        pending = httpx.get(f"{server.url}/metrics", headers=READ, timeout=5).text
        return found[0] if "ballast_inbox_pending 0.0" in pending else None

    summary = wait_until(incident, 60, "the inbox to drain after restart", interval=0.25)
    detail = httpx.get(
        f"{server.url}/api/v1/incidents/{summary['id']}", headers=READ, timeout=10
    ).json()
    stored = {a["labels"]["n"] for a in detail["alerts"]}
    assert acknowledged <= stored, f"lost {len(acknowledged - stored)} acknowledged alerts"
    assert stored <= sent_at_all
    firing_entries = Counter(
        e["details"]["labels"]["n"] for e in detail["timeline"] if e["kind"] == "alert_firing"
    )
    assert set(firing_entries) == stored
    assert max(firing_entries.values()) == 1, "an alert was processed twice"
    assert detail["alert_count"] == len(stored)
