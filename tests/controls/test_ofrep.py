"""OFREP 0.3 over HTTP: exact shapes, errors, ETag/304 and optional bearer auth."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import httpx
import pytest

from bot.controls import BuiltinControlStore
from tests.controls.conftest import API_TOKEN, AUTH
from tests.principals import ROSTER

MakeClient = Callable[..., Awaitable[httpx.AsyncClient]]
TOOL = "support.tools.web_search.enabled"
MODEL = "support.model"
FLAG = "/ofrep/v1/evaluate/flags"


async def put(client: httpx.AsyncClient, key: str, value: bool | str) -> None:
    """Through the operator API, i.e. through the app's own store."""
    body = {"value": value, "actor": "U1"}
    response = await client.put(f"/api/v1/controls/{key}", json=body, headers=AUTH)
    assert response.status_code == 200, response.text


async def test_single_flag_shapes(make_client: MakeClient, store: BuiltinControlStore) -> None:
    client = await make_client()
    await store.write(TOOL, False, actor="a", reason="")
    await store.write(MODEL, "gpt-4o", actor="a", reason="")
    await store.write(MODEL, "gpt-4o-mini", actor="a", reason="")

    tool = await client.post(f"{FLAG}/{TOOL}", json={"context": {}})
    assert tool.status_code == 200
    assert tool.headers["content-type"] == "application/json"
    assert tool.json() == {
        "key": TOOL,
        "value": False,
        "reason": "STATIC",
        "variant": "false",
        "metadata": {"version": 1},
    }
    model = await client.post(f"{FLAG}/{MODEL}", json={"context": {}})
    assert model.json() == {
        "key": MODEL,
        "value": "gpt-4o-mini",
        "reason": "STATIC",
        "variant": "gpt-4o-mini",
        "metadata": {"version": 2},
    }


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{}",
        b'{"context": {}}',
        b'{"context": {"targetingKey": "user-1", "tier": "gold", "n": [1, 2]}}',
        b'{"context": null}',
        b'{"context": {}, "future": "field"}',
    ],
)
async def test_any_context_gives_the_stored_value(
    make_client: MakeClient, store: BuiltinControlStore, body: bytes
) -> None:
    client = await make_client()
    await store.write(TOOL, True, actor="a", reason="")
    response = await client.post(
        f"{FLAG}/{TOOL}", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 200
    assert response.json()["value"] is True


async def test_missing_flag_is_flag_not_found(make_client: MakeClient) -> None:
    client = await make_client()
    response = await client.post(f"{FLAG}/{MODEL}", json={"context": {}})
    assert response.status_code == 404
    assert response.json() == {
        "key": MODEL,
        "errorCode": "FLAG_NOT_FOUND",
        "errorDetails": "no control value is stored for support.model",
    }
    bad_key = await client.post(f"{FLAG}/Support.Model", json={"context": {}})
    assert bad_key.status_code == 404
    assert bad_key.json() == {
        "key": "Support.Model",
        "errorCode": "FLAG_NOT_FOUND",
        "errorDetails": "flag keys are 1 to 200 characters of a-z 0-9 . _ -",
    }


@pytest.mark.parametrize(
    ("body", "code", "details"),
    [
        (b"{not json", "PARSE_ERROR", "request body is not valid JSON: "),
        (b"[1, 2]", "PARSE_ERROR", 'request body must be a JSON object such as {"context": {}}'),
        (b'"context"', "PARSE_ERROR", "request body must be a JSON object"),
        (b'{"context": []}', "INVALID_CONTEXT", "context must be a JSON object, not list"),
        (b'{"context": "x"}', "INVALID_CONTEXT", "context must be a JSON object, not str"),
        (b"\xff\xfe", "PARSE_ERROR", "request body is not valid JSON"),
    ],
)
async def test_bad_requests_are_400_with_an_ofrep_code(
    make_client: MakeClient, store: BuiltinControlStore, body: bytes, code: str, details: str
) -> None:
    client = await make_client()
    await store.write(TOOL, True, actor="a", reason="")
    headers = {"content-type": "application/json"}
    single = await client.post(f"{FLAG}/{TOOL}", content=body, headers=headers)
    assert single.status_code == 400
    assert single.json()["key"] == TOOL
    assert single.json()["errorCode"] == code
    assert single.json()["errorDetails"].startswith(details)
    bulk = await client.post(FLAG, content=body, headers=headers)
    assert bulk.status_code == 400
    assert bulk.json()["errorCode"] == code
    assert "key" not in bulk.json()


async def test_oversized_body_is_refused(make_client: MakeClient) -> None:
    client = await make_client()
    huge = b'{"context": {"x": "' + b"a" * 70_000 + b'"}}'
    response = await client.post(f"{FLAG}/{TOOL}", content=huge)
    assert response.status_code == 400
    assert response.json()["errorCode"] == "GENERAL"


async def test_bulk_evaluation_and_etag(make_client: MakeClient) -> None:
    client = await make_client(api_token=API_TOKEN)
    empty = await client.post(FLAG, json={"context": {}})
    assert empty.status_code == 200
    assert empty.json() == {"flags": []}

    await put(client, TOOL, False)
    await put(client, MODEL, "gpt-4o")
    first = await client.post(FLAG, json={"context": {}})
    assert first.status_code == 200
    assert first.headers["cache-control"] == "no-cache"
    tag = first.headers["etag"]
    assert tag.startswith('"')
    assert tag.endswith('"')
    assert tag != empty.headers["etag"]
    assert first.json() == {
        "flags": [
            {
                "key": MODEL,
                "value": "gpt-4o",
                "reason": "STATIC",
                "variant": "gpt-4o",
                "metadata": {"version": 1},
            },
            {
                "key": TOOL,
                "value": False,
                "reason": "STATIC",
                "variant": "false",
                "metadata": {"version": 1},
            },
        ]
    }

    for header in (tag, f"W/{tag}", f'"other", {tag}', "*"):
        cached = await client.post(FLAG, json={"context": {}}, headers={"if-none-match": header})
        assert cached.status_code == 304, header
        assert cached.content == b""
        assert cached.headers["etag"] == tag

    stale = await client.post(FLAG, json={"context": {}}, headers={"if-none-match": '"0.0"'})
    assert stale.status_code == 200
    assert stale.headers["etag"] == tag

    # A write in this process is served by the very next request, single or bulk.
    await put(client, TOOL, True)
    assert (await client.post(f"{FLAG}/{TOOL}", json={})).json()["value"] is True
    changed = await client.post(FLAG, json={"context": {}}, headers={"if-none-match": tag})
    assert changed.status_code == 200
    assert changed.headers["etag"] != tag
    assert changed.json()["flags"][1]["value"] is True


async def test_a_change_by_another_replica_is_served_within_max_staleness(
    make_client: MakeClient, store: BuiltinControlStore
) -> None:
    """``store`` is another process's store (a replica, the CLI): no shared memory."""
    client = await make_client()
    await store.write(TOOL, True, actor="a", reason="")
    assert (await client.post(f"{FLAG}/{TOOL}", json={})).json()["value"] is True
    await store.write(TOOL, False, actor="replica-2", reason="")
    # Served without any write through this process; how soon is bench/control_staleness.py's.
    guard = time.monotonic() + 30  # a hang guard, not a goal
    while (await client.post(f"{FLAG}/{TOOL}", json={})).json()["value"] is not False:
        assert time.monotonic() < guard, "another replica's change was never served"
        await asyncio.sleep(0.005)
    bulk = await client.post(FLAG, json={})
    assert bulk.headers["etag"] == await store.etag()


async def test_two_replicas_answer_with_the_same_etag(
    make_client: MakeClient, store: BuiltinControlStore
) -> None:
    one, two = await make_client(), await make_client()
    await store.write(TOOL, False, actor="a", reason="")
    first = await one.post(FLAG, json={})
    assert first.headers["etag"] == (await two.post(FLAG, json={})).headers["etag"]
    again = await two.post(FLAG, json={}, headers={"if-none-match": first.headers["etag"]})
    assert again.status_code == 304


async def test_bearer_token_when_configured(
    make_client: MakeClient, store: BuiltinControlStore
) -> None:
    await store.write(TOOL, False, actor="a", reason="")
    anonymous = await make_client(roster=False)
    closed = await anonymous.post(f"{FLAG}/{TOOL}", json={})
    assert closed.status_code == 401  # closed by default
    assert "BALLAST_OFREP_TOKEN" in closed.json()["detail"]
    opened = await make_client(roster=False, insecure_allow_anonymous=True)
    assert (await opened.post(f"{FLAG}/{TOOL}", json={})).status_code == 200

    client = await make_client(roster=False, ofrep_token="ofrep-secret")
    for url in (f"{FLAG}/{TOOL}", FLAG):
        missing = await client.post(url, json={})
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"] == "Bearer"
        assert "BALLAST_OFREP_TOKEN" in missing.json()["detail"]
        assert "ofrep-secret" not in missing.text
        wrong = await client.post(url, json={}, headers={"authorization": "Bearer nope"})
        assert wrong.status_code == 401
        right = await client.post(url, json={}, headers={"authorization": "Bearer ofrep-secret"})
        assert right.status_code == 200
        key = await client.post(url, json={}, headers={"x-api-key": "ofrep-secret"})
        assert key.status_code == 200


async def test_principals_with_the_reader_role_read(
    make_client: MakeClient, store: BuiltinControlStore
) -> None:
    await store.write(TOOL, False, actor="a", reason="")
    client = await make_client(ofrep_token="ofrep-secret")
    reader = await client.post(f"{FLAG}/{TOOL}", json={}, headers=ROSTER["reader"].headers)
    assert reader.status_code == 200
    # automation alone has no reader role: authenticated, not allowed.
    automation = ROSTER["automation"].headers
    assert (await client.post(FLAG, json={}, headers=automation)).status_code == 403


async def test_never_rate_limited(make_client: MakeClient, store: BuiltinControlStore) -> None:
    """A 429 would pause every flag evaluation in the app: a burst gets only 200s."""
    client = await make_client()
    await store.write(TOOL, False, actor="a", reason="")
    responses = await asyncio.gather(
        *(client.post(f"{FLAG}/{TOOL}", json={"context": {}}) for _ in range(300)),
        *(client.post(FLAG, json={"context": {}}) for _ in range(100)),
    )
    assert {r.status_code for r in responses} == {200}
