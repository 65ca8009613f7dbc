"""A real Prometheus Alertmanager sends real webhooks to a running ``ballast serve``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import need_binary
from tests.e2e.processes import Alertmanager, wait_until
from tests.principals import READ

pytestmark = [pytest.mark.alertmanager, pytest.mark.slow]


def am_alert(instance: str, *, resolved: bool = False) -> dict[str, Any]:
    now = datetime.now(UTC)
    alert: dict[str, Any] = {
        "labels": {
            "alertname": "HighErrorRate",
            "service": "checkout",
            "instance": instance,
            "severity": "critical",
        },
        "annotations": {"summary": f"5xx rate high on {instance}"},
        "generatorURL": "http://prometheus.example/graph",
    }
    if resolved:
        alert["endsAt"] = (now - timedelta(seconds=1)).isoformat()
    return alert


def test_alertmanager_fires_groups_and_resolves(make_server: Any, tmp_path: Path) -> None:
    binary = need_binary("prometheus-alertmanager")
    server = make_server(BALLAST_WEBHOOK_TOKEN="am-token-123", BALLAST_API_TOKEN="api-token")
    server.start()
    token_file = tmp_path / "token"
    token_file.write_text("am-token-123")
    am = Alertmanager(binary, tmp_path, f"{server.url}/webhooks/alertmanager", token_file)
    am.start()
    try:

        def incidents() -> list[dict[str, Any]]:
            response = httpx.get(f"{server.url}/api/v1/incidents", headers=READ, timeout=2)
            return list(response.json()["incidents"])

        def firing(count: int) -> Any:
            found = incidents()
            return found if found and found[0]["firing_count"] == count else None

        am.post_alerts([am_alert("checkout-1"), am_alert("checkout-2")])
        [incident] = wait_until(lambda: firing(2), 15, "2 alerts firing in one incident")
        assert incident["runbook_id"] == "checkout/high-error-rate"
        assert incident["status"] == "triggered"

        am.post_alerts([am_alert("checkout-1"), am_alert("checkout-2"), am_alert("checkout-3")])
        [incident] = wait_until(lambda: firing(3), 15, "the grouped update with a third alert")
        assert incident["alert_count"] == 3

        am.post_alerts([am_alert(f"checkout-{i}", resolved=True) for i in (1, 2, 3)])
        wait_until(lambda: incidents()[0]["status"] == "resolved", 15, "the incident to resolve")
        [incident] = incidents()
        assert incident["firing_count"] == 0
        detail = httpx.get(
            f"{server.url}/api/v1/incidents/{incident['id']}", headers=READ, timeout=2
        ).json()
        kinds = [entry["kind"] for entry in detail["timeline"]]
        assert kinds[0] == "opened"
        assert kinds.count("alert_firing") == 3
        assert kinds.count("alert_resolved") == 3
        assert kinds[-1] == "resolved"
        assert {a["source"] for a in detail["alerts"]} == {"alertmanager"}
        assert all(
            a["generator_url"] == "http://prometheus.example/graph" for a in detail["alerts"]
        )
        metrics = httpx.get(f"{server.url}/metrics", headers=READ, timeout=2).text
        assert 'ballast_webhook_requests_total{code="401"' not in metrics
    finally:
        am.stop()
