"""The operator API: list, show with history, set with actor and bearer token."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest

from bot.controls import BuiltinControlStore
from tests.conftest import Clock
from tests.controls.conftest import API_TOKEN, AUTH
from tests.principals import ROSTER

MakeClient = Callable[..., Awaitable[httpx.AsyncClient]]
TOOL = "support.tools.web_search.enabled"
URL = "/api/v1/controls"


async def test_set_show_and_list(make_client: MakeClient, clock: Clock) -> None:
    client = await make_client(api_token=API_TOKEN)
    assert (await client.get(URL)).json() == {"controls": []}

    put = await client.put(
        f"{URL}/{TOOL}",
        json={"value": False, "actor": "U024BE7LH", "reason": "tool errors"},
        headers=AUTH,
    )
    assert put.status_code == 200
    assert put.json() == {
        "key": TOOL,
        "before": None,
        "after": False,
        "changed": True,
        "version": 1,
        "history_id": 1,
        "backend": "builtin",
    }
    clock.advance(minutes=2)
    again = await client.put(f"{URL}/{TOOL}", json={"value": True, "actor": "bob"}, headers=AUTH)
    assert again.json()["before"] is False
    assert again.json()["version"] == 2

    await client.put(f"{URL}/other.model", json={"value": "gpt-4o", "actor": "bob"}, headers=AUTH)
    listed = (await client.get(URL)).json()["controls"]
    assert [(c["key"], c["value"], c["value_type"]) for c in listed] == [
        ("other.model", "gpt-4o", "string"),
        (TOOL, True, "bool"),
    ]
    only = (await client.get(URL, params={"service": "support"})).json()["controls"]
    assert [c["key"] for c in only] == [TOOL]
    assert (await client.get(URL, params={"service": "Bad Name"})).status_code == 422

    shown = (await client.get(f"{URL}/{TOOL}")).json()
    assert shown["value"] is True
    assert shown["version"] == 2
    assert shown["updated_by"] == "bob"
    assert shown["updated_at"] == "2026-11-27T03:02:00Z"
    assert [
        (h["before"], h["after"], h["actor"], h["reason"], h["source"]) for h in shown["history"]
    ] == [
        (False, True, "bob", "[via token bridge for bob]", "builtin"),
        (None, False, "U024BE7LH", "tool errors [via token bridge for U024BE7LH]", "builtin"),
    ]


async def test_show_unknown_and_invalid_keys(make_client: MakeClient) -> None:
    client = await make_client()
    unknown = await client.get(f"{URL}/support.model")
    assert unknown.status_code == 404
    assert unknown.json()["detail"].startswith("support.model has no value in the built-in store")
    invalid = await client.get(f"{URL}/support.autonmy")
    assert invalid.status_code == 422
    assert invalid.json()["detail"].startswith('"support.autonmy" is not a control key: use ')


async def test_show_a_key_held_by_another_backend(
    make_client: MakeClient, store: BuiltinControlStore
) -> None:
    client = await make_client()
    await store.history_log.record_change(
        "rag.retrieval_index", None, "kb-v7", actor="ballast", source="flagd"
    )
    shown = (await client.get(f"{URL}/rag.retrieval_index")).json()
    assert shown["value"] is None
    assert [(h["after"], h["source"]) for h in shown["history"]] == [("kb-v7", "flagd")]


async def test_set_needs_the_operator_role(make_client: MakeClient) -> None:
    body = {"value": False}
    unconfigured = await make_client(roster=False)
    refused = await unconfigured.put(f"{URL}/{TOOL}", json=body, headers=AUTH)
    assert refused.status_code == 401
    assert "set BALLAST_API_TOKEN or add auth.tokens" in refused.json()["detail"]

    client = await make_client(api_token=API_TOKEN)
    anonymous = {"authorization": ""}
    assert (await client.put(f"{URL}/{TOOL}", json=body, headers=anonymous)).status_code == 401
    wrong = await client.put(f"{URL}/{TOOL}", json=body, headers={"authorization": "Bearer x"})
    assert wrong.status_code == 401
    reader = await client.put(f"{URL}/{TOOL}", json=body, headers=ROSTER["reader"].headers)
    assert reader.status_code == 403
    assert (await client.get(URL, headers=AUTH)).json() == {"controls": []}
    set_by_api = await client.put(
        f"{URL}/{TOOL}", json=body, headers={"authorization": f"Bearer {API_TOKEN}"}
    )
    assert set_by_api.status_code == 200, set_by_api.text
    [change] = (await client.get(f"{URL}/{TOOL}", headers=AUTH)).json()["history"]
    assert (change["actor"], change["reason"]) == ("api", "[via api_token api]")
    claimed = await client.put(
        f"{URL}/{TOOL}",
        json={**body, "actor": "U1"},
        headers={"authorization": f"Bearer {API_TOKEN}"},
    )
    assert claimed.status_code == 403
    assert "may not act as 'U1'" in claimed.json()["detail"]


@pytest.mark.parametrize(
    ("key", "body", "detail"),
    [
        (
            TOOL,
            {"value": "false", "actor": "U1"},
            f'{TOOL} must be true or false (a JSON boolean); got "false"',
        ),
        (
            "support.autonomy",
            {"value": "manual", "actor": "U1"},
            'support.autonomy must be one of full, supervised, suggest_only, off; got "manual"',
        ),
        (
            "support.human_review",
            {"value": None, "actor": "U1"},
            "support.human_review must be one of off, high_risk, all; got null",
        ),
        (
            "support.autonmy",
            {"value": "off", "actor": "U1"},
            '"support.autonmy" is not a control key: use <service>.tools.<tool>.enabled, ',
        ),
    ],
)
async def test_bad_values_are_422_and_change_nothing(
    make_client: MakeClient, key: str, body: dict[str, object], detail: str
) -> None:
    client = await make_client(api_token=API_TOKEN)
    await client.put(f"{URL}/support.autonomy", json={"value": "full", "actor": "a"}, headers=AUTH)
    response = await client.put(f"{URL}/{key}", json=body, headers=AUTH)
    assert response.status_code == 422
    assert response.json()["detail"].startswith(detail)
    listed = (await client.get(URL)).json()["controls"]
    assert [(c["key"], c["value"], c["version"]) for c in listed] == [
        ("support.autonomy", "full", 1)
    ]


@pytest.mark.parametrize(
    "body",
    [
        {"value": False, "actor": ""},
        {"actor": "U1"},
        {"value": False, "actor": "U1", "extra": 1},
        {"value": False, "actor": "U1", "reason": "r" * 2001},
    ],
)
async def test_malformed_bodies_are_422(make_client: MakeClient, body: dict[str, object]) -> None:
    client = await make_client(api_token=API_TOKEN)
    response = await client.put(f"{URL}/{TOOL}", json=body, headers=AUTH)
    assert response.status_code == 422
    assert (await client.get(URL)).json() == {"controls": []}


async def test_a_service_held_elsewhere_is_refused(make_client: MakeClient, tmp_path: Path) -> None:
    """Setting a flagd service's key here would change nothing its applications read."""
    flags = tmp_path / "flags.json"
    flags.write_text('{"flags": {}}')
    config = tmp_path / "ballast.yaml"
    config.write_text(f"services:\n  rag:\n    backend: {{type: flagd, path: {flags}}}\n")
    client = await make_client(api_token=API_TOKEN, config=config)
    body = {"value": "kb-v2", "actor": "U1"}
    refused = await client.put(f"{URL}/rag.retrieval_index", json=body, headers=AUTH)
    assert refused.status_code == 409
    assert refused.json()["detail"].startswith(
        "rag's controls live in flagd (services.rag.backend in ballast.yaml)"
    )
    assert (await client.get(URL)).json() == {"controls": []}
    allowed = await client.put(f"{URL}/support.retrieval_index", json=body, headers=AUTH)
    assert allowed.status_code == 200
