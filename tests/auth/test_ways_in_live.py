"""Each shared secret and the exposure rule, against a real ``ballast serve`` (SQLite and
PostgreSQL): webhooks by bearer or basic auth, /metrics and OFREP by their own tokens, and the
refusal to serve other machines unauthenticated."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import httpx
import pytest

from tests.e2e.processes import free_port
from tests.principals import ROSTER

pytestmark = pytest.mark.slow

WEBHOOK = "hook-secret-1"
METRICS = "metrics-secret-1"
OFREP = "ofrep-secret-1"
ALERT = {"alerts": [{"labels": {"alertname": "ToolFailing", "service": "svc-a"}}]}


def test_each_secret_on_a_live_server(make_server: Any) -> None:
    server = make_server(
        BALLAST_WEBHOOK_TOKEN=WEBHOOK, BALLAST_METRICS_TOKEN=METRICS, BALLAST_OFREP_TOKEN=OFREP
    )
    server.start()
    hook = f"{server.url}/webhooks/generic"
    assert httpx.post(hook, json=ALERT, timeout=5).status_code == 401
    assert httpx.post(hook, json=ALERT, auth=("alertmanager", "nope"), timeout=5).status_code == 401
    bearer = {"authorization": f"Bearer {WEBHOOK}"}
    assert httpx.post(hook, json=ALERT, headers=bearer, timeout=5).status_code == 200
    basic = httpx.post(hook, json=ALERT, auth=("alertmanager", WEBHOOK), timeout=5)
    assert basic.status_code == 200, basic.text  # Alertmanager basic_auth, Grafana user/password

    metrics = f"{server.url}/metrics"
    assert httpx.get(metrics, timeout=5).status_code == 401
    scraped = httpx.get(metrics, headers={"authorization": f"Bearer {METRICS}"}, timeout=5)
    assert scraped.status_code == 200
    assert 'ballast_auth_failures_total{endpoint="/webhooks/generic",reason="missing"} 1.0' in (
        scraped.text
    )
    assert "ballast_insecure_allow_anonymous 0.0" in scraped.text

    flags = f"{server.url}/ofrep/v1/evaluate/flags"
    assert httpx.post(flags, json={}, timeout=5).status_code == 401
    assert httpx.post(flags, json={}, headers={"x-api-key": OFREP}, timeout=5).status_code == 200
    bearer_ofrep = {"authorization": f"Bearer {OFREP}"}
    assert httpx.post(flags, json={}, headers=bearer_ofrep, timeout=5).status_code == 200

    # A named token reaches the API; the webhook secret does not.
    api = f"{server.url}/api/v1/incidents"
    assert httpx.get(api, headers=ROSTER["reader"].headers, timeout=5).status_code == 200
    assert httpx.get(api, headers=bearer, timeout=5).status_code == 401
    assert WEBHOOK not in server.logs()
    assert METRICS not in server.logs()


def test_closed_by_default_on_a_live_server(make_server: Any) -> None:
    """No token set at all: every endpoint but health answers 401 and stores nothing."""
    server = make_server()
    server.env.pop("BALLAST_API_TOKEN", None)
    server.start()
    calls = [
        ("POST", "/webhooks/generic", ALERT),
        ("POST", "/webhooks/alertmanager", {"alerts": []}),
        ("POST", "/webhooks/grafana", {"alerts": []}),
        ("PUT", "/webhooks/grafana", {"alerts": []}),
        ("POST", "/ofrep/v1/evaluate/flags", {}),
        ("POST", "/ofrep/v1/evaluate/flags/svc-a.autonomy", {}),
        ("GET", "/metrics", None),
        ("GET", "/api/v1/incidents", None),
        ("GET", "/openapi.json", None),
    ]
    for method, path, body in calls:
        response = httpx.request(method, f"{server.url}{path}", json=body, timeout=5)
        assert response.status_code == 401, (method, path, response.text)
        assert response.headers["www-authenticate"] == "Bearer"
    for path in ("/healthz", "/readyz"):
        assert httpx.get(f"{server.url}{path}", timeout=5).status_code == 200
    reader = ROSTER["reader"].headers
    listed = httpx.get(f"{server.url}/api/v1/incidents", headers=reader, timeout=5)
    assert listed.json()["incidents"] == []  # the anonymous alert was not stored
    scraped = httpx.get(f"{server.url}/metrics", headers=reader, timeout=5).text
    assert "ballast_insecure_allow_anonymous 0.0" in scraped
    assert 'endpoint="/webhooks/generic",reason="missing"} 1.0' in scraped


def _serve(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", "serve", "--host", "0.0.0.0", "--port", "1", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_network_address_needs_authentication(make_server: Any) -> None:
    server = make_server()  # its environment only: never started here
    env = {k: v for k, v in server.env.items() if k not in ("BALLAST_API_TOKEN", "BALLAST_CONFIG")}
    refused = _serve(env)
    assert refused.returncode == 2
    assert "set BALLAST_WEBHOOK_TOKEN" in refused.stderr
    assert "set BALLAST_API_TOKEN or add auth.tokens" in refused.stderr
    assert "--insecure-allow-anonymous" in refused.stderr


def test_insecure_allow_anonymous_says_so(make_server: Any) -> None:
    server = make_server()
    server.env.pop("BALLAST_CONFIG")
    port = free_port()
    server.port = port
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bot",
            "serve",
            "--host",
            "0.0.0.0",
            "--port",
            str(port),
            "--insecure-allow-anonymous",
        ],
        cwd=server.workdir,
        env=server.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    server.process = process
    try:
        from tests.e2e.processes import wait_until

        wait_until(
            lambda: httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200,
            30,
            "ballast serve --insecure-allow-anonymous",
        )
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        assert "ballast_insecure_allow_anonymous 1.0" in metrics
        # What the flag opens: webhooks and OFREP whose token is unset; never the API.
        hook = httpx.post(f"http://127.0.0.1:{port}/webhooks/generic", json=ALERT, timeout=5)
        assert hook.status_code == 200, hook.text
        flags = httpx.post(f"http://127.0.0.1:{port}/ofrep/v1/evaluate/flags", json={}, timeout=5)
        assert flags.status_code == 200
        api = httpx.get(f"http://127.0.0.1:{port}/api/v1/incidents", timeout=5)
        assert api.status_code == 401
    finally:
        process.terminate()
        out, _ = process.communicate(timeout=30)
    assert "INSECURE" in out.decode()
    assert "webhooks are open to anyone" in out.decode()


def test_automation_principals_post_alerts(make_server: Any) -> None:
    server = make_server(BALLAST_WEBHOOK_TOKEN=WEBHOOK)
    server.start()
    hook = f"{server.url}/webhooks/generic"
    posted = httpx.post(hook, json=ALERT, headers=ROSTER["automation"].headers, timeout=5)
    assert posted.status_code == 200, posted.text
    reader = httpx.post(hook, json=ALERT, headers=ROSTER["reader"].headers, timeout=5)
    assert reader.status_code == 403  # authenticated, without the automation role
