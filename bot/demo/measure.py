"""Ballast's own share of the loop: Alertmanager webhook received → control value served.

Each run posts an Alertmanager webhook for a new tool (a new incident whose first mitigation is
``disable_tool``, mode auto) while a second thread evaluates that tool's flag over OFREP as fast
as it can; the time is from just before the webhook is sent to the first OFREP answer with the
new value.
"""

from __future__ import annotations

import statistics
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx


@dataclass
class Share:
    samples_ms: list[float]

    def percentile(self, q: float) -> float:
        ordered = sorted(self.samples_ms)
        index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
        return ordered[index]

    @property
    def p50(self) -> float:
        return statistics.median(self.samples_ms)

    @property
    def p99(self) -> float:
        return self.percentile(99)


def tool_failure_webhook(
    tool: str, fingerprint: str | None = None, summary: str = "measurement"
) -> dict[str, object]:
    """Alertmanager's body for a new ToolCallFailureRate alert on ``tool`` (one incident each:
    the shipped runbook's auto ``disable_tool`` turns the tool's flag false)."""
    labels = {
        "alertname": "ToolCallFailureRate",
        "service": "support-assistant",
        "tool": tool,
        "env": "prod",
        "severity": "warning",
    }
    return {
        "version": "4",
        "status": "firing",
        "receiver": "ballast",
        "groupKey": f'{{}}:{{tool="{tool}"}}',
        "truncatedAlerts": 0,
        "groupLabels": {"tool": tool},
        "commonLabels": labels,
        "commonAnnotations": {},
        "externalURL": "http://127.0.0.1:9093",
        "alerts": [
            {
                "status": "firing",
                "labels": labels,
                "annotations": {"summary": summary},
                "startsAt": datetime.now(UTC).isoformat(),
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://127.0.0.1:9090/graph",
                "fingerprint": fingerprint or uuid.uuid4().hex[:16],
            }
        ],
    }


@dataclass(frozen=True)
class Credentials:
    """Headers for the webhook (Alertmanager's bearer token) and for OFREP (the app's)."""

    webhook: dict[str, str]
    ofrep: dict[str, str]


def measure_once(
    ballast_url: str, tool: str, credentials: Credentials, timeout: float = 10.0
) -> float:
    """Milliseconds from sending the webhook to the first OFREP answer ``false``."""
    key = f"support-assistant.tools.{tool}.enabled"
    seen = threading.Event()
    seen_at: list[float] = []
    go = threading.Event()

    def poll() -> None:
        with httpx.Client(timeout=2, headers=credentials.ofrep) as client:
            go.wait()
            deadline = time.perf_counter() + timeout
            while time.perf_counter() < deadline:
                response = client.post(f"{ballast_url}/ofrep/v1/evaluate/flags/{key}", json={})
                if response.status_code == 200 and response.json()["value"] is False:
                    seen_at.append(time.perf_counter())
                    seen.set()
                    return

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    with httpx.Client(timeout=5) as client:
        body = tool_failure_webhook(tool)
        # Warm the connection.
        client.post(
            f"{ballast_url}/ofrep/v1/evaluate/flags/{key}", json={}, headers=credentials.ofrep
        )
        sent = time.perf_counter()
        go.set()
        client.post(
            f"{ballast_url}/webhooks/alertmanager", json=body, headers=credentials.webhook
        ).raise_for_status()
    if not seen.wait(timeout):
        raise TimeoutError(f"{key} never turned false")
    poller.join()
    return (seen_at[0] - sent) * 1000


def measure(ballast_url: str, credentials: Credentials, runs: int = 30) -> Share:
    """``runs`` independent incidents, one new tool each."""
    prefix = uuid.uuid4().hex[:6]
    return Share([measure_once(ballast_url, f"m{prefix}-{i}", credentials) for i in range(runs)])
