"""Issue 14's ``http_request`` probes against a real loopback "gateway" that records requests.

The runbook is ``runbooks/llm-gateway-provider-errors.yaml``'s first mitigation pointed at the
recording server, with a label in a header too. Hostile labels must not leak a secret, move the
request to another path, or count a redirect as applied; what cannot be sent safely is refused
as a journaled failure, and the timeline names the URL as it was sent.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.config import BallastConfig
from tests.backends.conftest import RecordingServer
from tests.principals import BRIDGE

TOKEN = BRIDGE.headers  # may name the acting person in the body
GATEWAY_SECRET = "gw-admin-secret-9c1e"
API_SECRET = "ballast-api-secret-77aa"
RUNBOOK = """
id: security/gateway
title: "{{{{ labels.provider }}}} failing"
service: llm-gateway
severity: sev1
owners: ["U0OWNER1"]
match: ['alertname="LLMProviderErrorRateHigh"']
group_by: [provider]
symptom: The provider fails.
business_impact: Everything degrades.
mitigations:
  - id: pause-batch-lane
    title: Pause the batch lane
    action: http_request
    params:
      method: POST
      url: >-
        {url}/admin/v1/providers/{{{{ labels.provider }}}}/lanes/batch/pause?by={{{{
        labels.by | default('ballast') }}}}
      headers:
        Authorization: "Bearer ${{GATEWAY_TOKEN}}"
        X-Note: "{{{{ labels.note | default('none') }}}}"
      json: {{reason: "ballast: {{{{ labels.alertname }}}}"}}
      risk: low
    mode: auto
"""


@pytest.fixture
def gateway() -> Iterator[RecordingServer]:
    with RecordingServer() as server:
        yield server


@pytest.fixture
async def h(make_harness: Any, gateway: RecordingServer, tmp_path: Path) -> Any:
    folder = tmp_path / "runbooks"
    folder.mkdir()
    (folder / "gateway.yaml").write_text(RUNBOOK.format(url=gateway.url))
    config = BallastConfig.model_validate(
        {"http": {"allowed_hosts": ["127.0.0.1"], "allowed_secrets": ["GATEWAY_TOKEN"]}}
    )
    return await make_harness(
        config=config,
        runbooks=folder,
        api_token="api-token-1",
        environ={"GATEWAY_TOKEN": GATEWAY_SECRET, "BALLAST_API_TOKEN": API_SECRET},
        retry_backoff=0.0,
    )


async def fire(h: Any, **labels: str) -> dict[str, Any]:
    alert = {"labels": {"alertname": "LLMProviderErrorRateHigh", **labels}}
    response = await h.client.post("/webhooks/generic", json={"alerts": [alert]})
    assert response.status_code == 200, response.text
    await h.settle()
    body: dict[str, Any] = (await h.client.get("/api/v1/incidents/1", headers=TOKEN)).json()
    return body


def mitigation(incident: dict[str, Any]) -> dict[str, Any]:
    [found] = [m for m in incident["mitigations"] if m["id"] == "pause-batch-lane"]
    return found


def timeline_text(incident: dict[str, Any]) -> str:
    return "\n".join(
        f"{e['kind']}: {e['summary']} {e.get('details')}" for e in incident["timeline"]
    )


async def test_a_path_label_stays_one_path_segment(h: Any, gateway: RecordingServer) -> None:
    incident = await fire(h, provider="openai/../../../../v9/delete-everything?x=", by="a&b=c")
    assert mitigation(incident)["state"] == "applied", mitigation(incident)
    [request] = gateway.requests
    assert request.path == (
        "/admin/v1/providers/openai%2F..%2F..%2F..%2F..%2Fv9%2Fdelete-everything%3Fx%3D"
        "/lanes/batch/pause?by=a%26b%3Dc"
    )
    # The timeline names the URL as sent, not as a template or before normalisation.
    assert f"POST {gateway.url}{request.path} → 200" in timeline_text(incident)


async def test_a_fragment_label_cannot_cut_the_path(h: Any, gateway: RecordingServer) -> None:
    await fire(h, provider="openai#")
    [request] = gateway.requests
    assert request.path == "/admin/v1/providers/openai%23/lanes/batch/pause?by=ballast"


@pytest.mark.parametrize("provider", ["..", "."])
async def test_a_dot_segment_is_refused_and_journaled(
    h: Any, gateway: RecordingServer, provider: str
) -> None:
    incident = await fire(h, provider=provider)
    row = mitigation(incident)
    assert row["state"] == "failed"
    assert "path segment" in row["error"]
    assert gateway.requests == [], "a request went out with a path a label bent"
    assert "path segment" in timeline_text(incident)


async def test_a_label_never_names_a_secret(h: Any, gateway: RecordingServer) -> None:
    incident = await fire(
        h, provider="openai", note="${BALLAST_API_TOKEN} ${GATEWAY_TOKEN} $${GATEWAY_TOKEN} $"
    )
    assert mitigation(incident)["state"] == "applied"
    [request] = gateway.requests
    assert request.headers["X-Note"] == "${BALLAST_API_TOKEN} ${GATEWAY_TOKEN} $${GATEWAY_TOKEN} $"
    assert request.headers["Authorization"] == f"Bearer {GATEWAY_SECRET}"  # literal text: yes
    received = f"{request.path} {request.headers} {request.body!r}"
    assert API_SECRET not in received
    assert received.count(GATEWAY_SECRET) == 1


async def test_a_secret_not_allowed_is_refused(make_harness: Any, tmp_path: Path) -> None:
    """No ``http.allowed_secrets``: the runbook's own ``${GATEWAY_TOKEN}`` is refused too."""
    with RecordingServer() as gateway:
        folder = tmp_path / "rb"
        folder.mkdir()
        (folder / "gateway.yaml").write_text(RUNBOOK.format(url=gateway.url))
        h = await make_harness(
            config=BallastConfig.model_validate({"http": {"allowed_hosts": ["127.0.0.1"]}}),
            runbooks=folder,
            api_token="api-token-1",
            environ={"GATEWAY_TOKEN": GATEWAY_SECRET},
        )
        row = mitigation(await fire(h, provider="openai"))
        assert row["state"] == "failed"
        assert "http.allowed_secrets" in row["error"]
        assert gateway.requests == []


async def test_a_redirect_is_a_failure(h: Any, gateway: RecordingServer) -> None:
    gateway.answer(302, {}, location="https://evil.example/login")
    incident = await fire(h, provider="openai")
    row = mitigation(incident)
    assert row["state"] == "failed"
    assert "302" in row["error"]
    assert "accept_redirects" in row["error"]
    assert len(gateway.requests) == 1, "the redirect was followed"


async def test_a_non_ascii_header_fails_cleanly(h: Any, gateway: RecordingServer) -> None:
    incident = await fire(h, provider="openai", note="café ☃")
    row = mitigation(incident)
    assert row["state"] == "failed"
    assert "X-Note" in row["error"]
    assert gateway.requests == []
    assert (await h.client.get("/healthz")).status_code == 200
