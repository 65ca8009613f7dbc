"""The JSON API reads a JSON body whatever its Content-Type, as the webhooks and OFREP do."""

from __future__ import annotations

from typing import Any

import pytest

from tests.principals import BRIDGE

TOKEN = BRIDGE.headers["authorization"]  # may name the acting person
ALERT = (
    b'{"labels": {"alertname": "LowGroundedness", "service": "support-assistant"},'
    b' "fingerprint": "json-body-1"}'
)


async def open_incident(h: Any) -> str:
    response = await h.client.post("/webhooks/generic", content=ALERT)
    assert response.status_code == 200, response.text
    await h.settle()
    [incident] = (await h.client.get("/api/v1/incidents")).json()["incidents"]
    return f"/api/v1/incidents/{incident['id']}"


@pytest.mark.parametrize(
    "content_type",
    [
        None,  # what many HTTP clients send
        "text/plain; charset=utf-8",
        "application/x-www-form-urlencoded",  # what `curl -d` sends
        "application/json",
        "application/merge-patch+json",
    ],
)
async def test_json_body_is_read_whatever_the_content_type(
    make_harness: Any, content_type: str | None
) -> None:
    h = await make_harness(api_token="api-token-1")
    url = await open_incident(h)
    headers = {"authorization": TOKEN}
    if content_type is not None:
        headers["content-type"] = content_type
    ack = await h.client.post(f"{url}/acknowledge", content=b'{"actor": "U1"}', headers=headers)
    assert ack.status_code == 200, ack.text
    assert ack.json()["acknowledged_by"] == "U1"

    run = await h.client.post(
        f"{url}/mitigations/lower-autonomy/run",
        content=b'{"actor": "U024BE7LH", "dry_run": true}',
        headers=headers,
    )
    assert run.status_code == 200, run.text
    assert run.json()["mitigation_id"] == "lower-autonomy"

    put = await h.client.put(
        "/api/v1/controls/support-assistant.model",
        content=b'{"value": "gpt-4o-2024-08-06", "actor": "U1"}',
        headers=headers,
    )
    assert put.status_code == 200, put.text
    assert put.json()["after"] == "gpt-4o-2024-08-06"


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/json"])
async def test_errors_keep_their_shape_and_field_names(
    make_harness: Any, content_type: str | None
) -> None:
    h = await make_harness(api_token="api-token-1")
    url = await open_incident(h)
    headers = {"authorization": TOKEN}
    if content_type is not None:
        headers["content-type"] = content_type

    wrong_field = await h.client.post(
        f"{url}/acknowledge", content=b'{"actr": "U1"}', headers=headers
    )
    assert wrong_field.status_code == 422
    locs = [error["loc"] for error in wrong_field.json()["detail"]]
    assert ["body", "actr"] in locs

    not_json = await h.client.post(f"{url}/acknowledge", content=b"actor=U1", headers=headers)
    assert not_json.status_code == 422
    assert not_json.json()["detail"][0]["type"] == "json_invalid"

    empty = await h.client.post(f"{url}/acknowledge", content=b"", headers=headers)
    assert empty.status_code == 422
    assert empty.json()["detail"][0]["loc"] == ["body"]

    detail = (await h.client.get(url)).json()
    assert detail["acknowledged_by"] is None  # nothing refused changed anything


async def test_multipart_and_other_types_are_refused_with_415(make_harness: Any) -> None:
    h = await make_harness(api_token="api-token-1")
    url = await open_incident(h)
    form = await h.client.post(
        f"{url}/acknowledge", files={"actor": (None, "U1")}, headers={"authorization": TOKEN}
    )
    assert form.status_code == 415
    assert "application/json" in form.json()["detail"]
    xml = await h.client.post(
        f"{url}/acknowledge",
        content=b"<actor>U1</actor>",
        headers={"authorization": TOKEN, "content-type": "application/xml"},
    )
    assert xml.status_code == 415
    assert "application/xml" in xml.json()["detail"]
    assert (await h.client.get(url)).json()["acknowledged_by"] is None


async def test_every_json_api_route_reads_json_and_keeps_its_openapi_schema(
    make_harness: Any,
) -> None:
    """Walks the OpenAPI description, so a route added later is covered too."""
    h = await make_harness(api_token="api-token-1")
    url = await open_incident(h)
    incident_id = url.rsplit("/", 1)[1]
    spec = (await h.client.get("/openapi.json")).json()
    with_body = [
        (path, method, operation)
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
        if path.startswith("/api/") and "requestBody" in operation
    ]
    assert len(with_body) >= 5  # acknowledge, resolve, run, undo, PUT control
    for path, method, operation in with_body:
        schema = operation["requestBody"]["content"]["application/json"]["schema"]
        assert "$ref" in schema, (path, schema)  # the model's schema, not raw bytes
        concrete = path.format(
            incident_id=incident_id, mitigation_id="lower-autonomy", key="support-assistant.model"
        )
        response = await h.client.request(
            method,
            concrete,
            content=b'{"unexpected": 1}',
            headers={"authorization": TOKEN, "content-type": "text/plain"},
        )
        assert response.status_code == 422, (path, response.text)
        # Read as a JSON object: the errors name its fields, never the body as a whole.
        locs = [error["loc"] for error in response.json()["detail"]]
        assert ["body", "unexpected"] in locs, (path, locs)
