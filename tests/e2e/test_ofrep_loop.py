"""An alert changes what a real OpenFeature application reads from Ballast's OFREP endpoint.

The application side is the real ``openfeature-sdk`` with ``openfeature-provider-ofrep``; the
Ballast side is a real ``ballast serve`` process; the alert arrives as a real webhook.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest
from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.contrib.provider.ofrep import OFREPProvider

from tests.e2e.processes import BallastServer, wait_until
from tests.principals import BRIDGE, roster_yaml

pytestmark = pytest.mark.slow

TOKEN = "api-token-e2e"
AUTH = {"authorization": f"Bearer {TOKEN}"}  # the service "api": sets controls, owns nothing
OFREP_TOKEN = "ofrep-token-e2e"  # what the application sends (OFREP is closed by default)


@pytest.fixture
def server(tmp_path: Path, server_database_url: str) -> Any:
    runbooks = tmp_path / "runbooks"
    shutil.copytree(Path(__file__).with_name("control_runbooks"), runbooks)
    config = tmp_path / "ballast.yaml"
    config.write_text('teams:\n  "@oncall": [U0ONCALL]\n' + roster_yaml())
    server = BallastServer(
        tmp_path,
        {
            "BALLAST_DATABASE_URL": server_database_url,
            "BALLAST_RUNBOOKS": str(runbooks),
            "BALLAST_CONFIG": str(config),
            "BALLAST_API_TOKEN": TOKEN,
            "BALLAST_OFREP_TOKEN": OFREP_TOKEN,
        },
        tmp_path / "ballast.log",
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture
def app_flags(server: BallastServer) -> OpenFeatureClient:
    """What the AI application does: an OpenFeature client on Ballast's OFREP endpoint."""
    headers = {"X-API-Key": OFREP_TOKEN}  # OFREP's API-key header
    api.set_provider(OFREPProvider(base_url=server.url, headers_factory=lambda: headers))
    yield api.get_client("support-assistant")
    api.shutdown()


def fire(server: BallastServer, runbook: str, alertname: str, **labels: str) -> int:
    alert = {"labels": {"alertname": alertname, "service": "assistant", **labels}}
    response = httpx.post(
        f"{server.url}/webhooks/generic", json={"alerts": [alert]}, headers=AUTH, timeout=5
    )
    assert response.status_code == 200
    url = f"{server.url}/api/v1/incidents"
    incidents = wait_until(
        lambda: httpx.get(url, params={"runbook": runbook}, headers=AUTH, timeout=5).json()[
            "incidents"
        ],
        10,
        f"the {runbook} incident",
    )
    return int(incidents[0]["id"])


def call(server: BallastServer, incident: int, mitigation: str, verb: str) -> dict[str, Any]:
    response = httpx.post(
        f"{server.url}/api/v1/incidents/{incident}/mitigations/{mitigation}/{verb}",
        json={"actor": "U0ONCALL"},
        headers=BRIDGE.headers,  # a bridge acting for the on-call person
        timeout=30,
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def seed(server: BallastServer, key: str, value: Any) -> None:
    response = httpx.put(
        f"{server.url}/api/v1/controls/{key}",
        json={"value": value},
        headers=AUTH,
        timeout=5,
    )
    assert response.status_code == 200, response.text


def test_disable_tool_then_undo(server: BallastServer, app_flags: OpenFeatureClient) -> None:
    key = "assistant.tools.web_search.enabled"
    assert app_flags.get_boolean_value(key, True) is True  # not set: the app's default
    incident = fire(server, "assistant/tool-failure", "ToolCallFailureRate", tool="web_search")
    wait_until(lambda: app_flags.get_boolean_value(key, True) is False, 10, "the tool off")
    details = app_flags.get_boolean_details(key, True)
    assert details.variant == "false"
    assert details.reason == "STATIC"

    undone = call(server, incident, "disable-tool", "undo")
    assert undone["state"] == "undone"
    assert app_flags.get_boolean_value(key, True) is True


def test_switch_model_then_undo(server: BallastServer, app_flags: OpenFeatureClient) -> None:
    key = "assistant.model"
    seed(server, key, "main-model-7")
    assert app_flags.get_string_value(key, "hard-coded") == "main-model-7"
    incident = fire(server, "assistant/provider-errors", "ModelProviderErrors")
    assert app_flags.get_string_value(key, "hard-coded") == "main-model-7"  # approve: not yet
    applied = call(server, incident, "fallback-model", "run")
    assert applied["state"] == "applied"
    assert app_flags.get_string_value(key, "hard-coded") == "fallback-model-2"
    call(server, incident, "fallback-model", "undo")
    assert app_flags.get_string_value(key, "hard-coded") == "main-model-7"


def test_force_human_review_then_undo(server: BallastServer, app_flags: OpenFeatureClient) -> None:
    key = "assistant.human_review"
    seed(server, key, "off")
    incident = fire(server, "assistant/groundedness", "GroundednessLow")
    wait_until(lambda: app_flags.get_string_value(key, "off") == "all", 10, "review of all")
    call(server, incident, "review-all", "undo")
    assert app_flags.get_string_value(key, "high_risk") == "off"
