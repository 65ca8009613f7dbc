"""The Unleash backend against a real unleash-server 8.2.0, read by the Python UnleashClient."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from actions.backends.unleash import UnleashBackend, UnleashConfig
from actions.errors import FinalError, RetryableError
from tests.backends.conftest import UnleashServer

TOKEN_ENV = "UNLEASH_ADMIN_TOKEN"


def unique(prefix: str) -> str:
    """Features live for the whole session's server: each test uses its own service name."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def make_backend(server: UnleashServer, http: httpx.AsyncClient, **config: Any) -> UnleashBackend:
    return UnleashBackend(
        UnleashConfig(url=server.url, token_env=TOKEN_ENV, **config),
        http,
        environ={TOKEN_ENV: server.admin_token},
    )


class UnleashApp:
    """An application reading flags with the official Python SDK, polling every second."""

    def __init__(self, server: UnleashServer, cache: Path) -> None:
        from UnleashClient import UnleashClient

        self.client = UnleashClient(
            url=f"{server.url}/api",
            app_name=unique("ballast-test-app"),
            environment="development",
            refresh_interval=1,
            disable_metrics=True,
            disable_registration=True,
            custom_headers={"Authorization": server.backend_token},
            cache_directory=str(cache),
        )
        self.client.initialize_client()

    def enabled(self, feature: str) -> bool:
        return bool(self.client.is_enabled(feature))

    def variant(self, feature: str) -> str | None:
        variant = self.client.get_variant(feature)
        payload = variant.get("payload") or {}
        return payload.get("value") if variant.get("enabled") else None

    def wait_for(self, read: Callable[[str], Any], feature: str, expected: Any) -> float:
        """Seconds until the SDK sees ``expected``."""
        started = time.monotonic()
        while (value := read(feature)) != expected:
            if time.monotonic() - started > 15:
                raise AssertionError(f"SDK still reads {feature}={value!r}, not {expected!r}")
            time.sleep(0.05)
        return time.monotonic() - started


@pytest.fixture
def app(unleash_server: UnleashServer, tmp_path: Path) -> Iterator[UnleashApp]:
    reader = UnleashApp(unleash_server, tmp_path / "unleash-cache")
    yield reader
    reader.client.destroy()


async def events(server: UnleashServer, http: httpx.AsyncClient, feature: str) -> dict[int, str]:
    response = await http.get(
        f"{server.url}/api/admin/events/{feature}", headers={"Authorization": server.admin_token}
    )
    return {e["id"]: e["type"] for e in response.json()["events"]}


# -- against the real server -----------------------------------------------------------------


async def test_tool_switch_toggles_the_environment_and_undo_restores(
    unleash_server: UnleashServer, http: httpx.AsyncClient, app: UnleashApp
) -> None:
    backend = make_backend(unleash_server, http)
    key = f"{unique('svc')}.tools.web_search.enabled"
    assert await backend.read(key) is None

    created = await backend.write(key, True, actor="U1", reason="setup")
    assert (created.before, created.after) == (None, True)
    assert created.response["created_feature"] is True
    await asyncio.to_thread(app.wait_for, app.enabled, key, True)

    result = await backend.write(key, False, actor="U1", reason="incident")
    assert (result.before, result.after) == (True, False)
    seen = await asyncio.to_thread(app.wait_for, app.enabled, key, False)
    unleash_server.timings["sdk_sees_toggle_s"] = seen
    recorded = await events(unleash_server, http, key)
    assert recorded[result.response["event_id"]] == "feature-environment-disabled"

    undo = await backend.write(key, result.before, actor="U1", reason="undo")  # type: ignore[arg-type]
    assert (undo.before, undo.after) == (False, True)
    await asyncio.to_thread(app.wait_for, app.enabled, key, True)
    recorded = await events(unleash_server, http, key)
    assert recorded[undo.response["event_id"]] == "feature-environment-enabled"
    assert await backend.read(key) is True


async def test_kill_switch_feature_is_on_when_the_tool_is_off(
    unleash_server: UnleashServer, http: httpx.AsyncClient, app: UnleashApp
) -> None:
    key = f"{unique('svc')}.tools.code_exec.enabled"
    backend = make_backend(unleash_server, http, kill_switch_keys=[key])
    await backend.write(key, True, actor="U1", reason="setup")  # Created, not killed.
    assert app.enabled(key) is False

    result = await backend.write(key, False, actor="U1", reason="kill it")
    assert (result.before, result.after) == (True, False)
    await asyncio.to_thread(app.wait_for, app.enabled, key, True)  # The kill switch is on.
    assert await backend.read(key) is False

    feature = (
        await http.get(
            f"{unleash_server.url}/api/admin/projects/default/features/{key}",
            headers={"Authorization": unleash_server.admin_token},
        )
    ).json()
    assert feature["type"] == "kill-switch"


async def test_model_variant_changes_and_undo_restores(
    unleash_server: UnleashServer, http: httpx.AsyncClient, app: UnleashApp
) -> None:
    backend = make_backend(unleash_server, http)
    key = f"{unique('svc')}.model"
    first = await backend.write(key, "gpt-4o", actor="U1", reason="setup")
    assert (first.before, first.after) == (None, "gpt-4o")
    await asyncio.to_thread(app.wait_for, app.variant, key, "gpt-4o")

    result = await backend.write(key, "claude 3.5/sonnet", actor="U1", reason="switch")
    assert (result.before, result.after) == ("gpt-4o", "claude 3.5/sonnet")
    seen = await asyncio.to_thread(app.wait_for, app.variant, key, "claude 3.5/sonnet")
    unleash_server.timings["sdk_sees_variant_s"] = seen
    recorded = await events(unleash_server, http, key)
    assert recorded[result.response["event_id"]] == "feature-strategy-update"
    assert result.response["event_types"] == ["feature-strategy-update"]

    undo = await backend.write(key, "gpt-4o", actor="U1", reason="undo")
    assert (undo.before, undo.after) == ("claude 3.5/sonnet", "gpt-4o")
    await asyncio.to_thread(app.wait_for, app.variant, key, "gpt-4o")


async def test_clear_makes_the_sdk_answer_as_for_a_missing_feature(
    unleash_server: UnleashServer, http: httpx.AsyncClient, app: UnleashApp
) -> None:
    """The undo of a change to a key that had no value before."""
    backend = make_backend(unleash_server, http)
    key = f"{unique('svc')}.prompt_version"
    created = await backend.write(key, "v7", actor="U1", reason="pin")
    assert created.before is None
    await asyncio.to_thread(app.wait_for, app.variant, key, "v7")

    cleared = await backend.clear(key, actor="U1", reason="undo")
    assert (cleared.before, cleared.after) == ("v7", None)
    assert cleared.response["event_types"] == [
        "feature-strategy-update",
        "feature-environment-disabled",
    ]
    await asyncio.to_thread(app.wait_for, app.variant, key, None)
    assert await backend.read(key) is None

    tool = f"{unique('svc')}.tools.search.enabled"
    off = await backend.write(tool, False, actor="U1", reason="created off")
    assert off.response["event_types"] == ["feature-created"]
    await backend.write(tool, True, actor="U1", reason="on")
    cleared = await backend.clear(tool, actor="U1", reason="undo")
    assert (cleared.before, cleared.after) == (True, False)  # What an SDK says for no feature.
    await asyncio.to_thread(app.wait_for, app.enabled, tool, False)


async def test_unchanged_write_causes_no_event(
    unleash_server: UnleashServer, http: httpx.AsyncClient
) -> None:
    backend = make_backend(unleash_server, http)
    key = f"{unique('svc')}.human_review"
    await backend.write(key, "all", actor="U1", reason="setup")
    before = await events(unleash_server, http, key)
    again = await backend.write(key, "all", actor="U1", reason="again")
    assert again.response["unchanged"] is True
    assert again.response["event_id"] is None
    assert await events(unleash_server, http, key) == before


async def test_split_variants_are_refused_before_anything_changes(
    unleash_server: UnleashServer, http: httpx.AsyncClient
) -> None:
    backend = make_backend(unleash_server, http)
    key = f"{unique('svc')}.retrieval_index"
    await backend.write(key, "idx-1", actor="U1", reason="setup")
    headers = {"Authorization": unleash_server.admin_token}
    base = f"{unleash_server.url}/api/admin/projects/default/features/{key}"
    strategy = (await http.get(base, headers=headers)).json()["environments"][0]["strategies"][0]
    split = [
        {"name": n, "weight": 500, "weightType": "variable", "stickiness": "default"}
        for n in ("idx-1", "idx-2")
    ]
    answer = await http.put(
        f"{base}/environments/development/strategies/{strategy['id']}",
        headers=headers,
        json={"name": strategy["name"], "parameters": strategy["parameters"], "variants": split},
    )
    assert answer.status_code == 200, answer.text
    with pytest.raises(FinalError) as caught:
        await backend.write(key, "idx-3", actor="U1", reason="switch")
    assert str(caught.value) == (
        f"Unleash feature {key} splits traffic between 2 variants (idx-1, idx-2) in "
        "development; Ballast sets one value and could not restore a split on undo. "
        "Reduce it to one variant in Unleash first"
    )


async def test_bad_token_and_unknown_environment_are_final_and_name_the_fix(
    unleash_server: UnleashServer, http: httpx.AsyncClient
) -> None:
    key = f"{unique('svc')}.tools.t.enabled"
    wrong = UnleashBackend(
        UnleashConfig(url=unleash_server.url, token_env=TOKEN_ENV),
        http,
        environ={TOKEN_ENV: "*:*.not-the-token"},
    )
    with pytest.raises(FinalError) as caught:
        await wrong.read(key)
    assert str(caught.value) == (
        f"Unleash GET /api/admin/projects/default/features/{key} answered 401: "
        "You must log in to use Unleash. (check the token in UNLEASH_ADMIN_TOKEN)"
    )
    assert "not-the-token" not in str(caught.value)

    staging = make_backend(unleash_server, http, environment="staging")
    await make_backend(unleash_server, http).write(key, True, actor="U1", reason="setup")
    with pytest.raises(FinalError, match="has no environment 'staging' in project 'default'"):
        await staging.write(key, False, actor="U1", reason="x")


# -- HTTP edge cases, with a fake Unleash --------------------------------------------------


def fake_unleash(handler: Callable[[httpx.Request], httpx.Response]) -> UnleashBackend:
    return UnleashBackend(
        UnleashConfig(url="http://unleash.test/", token_env=TOKEN_ENV),
        httpx.AsyncClient(transport=httpx.MockTransport(handler)),
        environ={TOKEN_ENV: "*:*.secret-admin-token"},
    )


async def test_timeouts_5xx_and_429_are_retryable_4xx_final() -> None:
    def timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    with pytest.raises(RetryableError) as retry:
        await fake_unleash(timeout).read("s.model")
    assert str(retry.value) == (
        "Unleash GET /api/admin/projects/default/features/s.model timed out after 10s"
    )

    def unavailable(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, json={"message": "db down"})

    with pytest.raises(RetryableError) as retry:
        await fake_unleash(unavailable).read("s.model")
    assert retry.value.retry_after is None
    assert str(retry.value).endswith("answered 503: db down")

    def limited(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, headers={"Retry-After": "7"}, json={"message": "slow down"})

    with pytest.raises(RetryableError) as retry:
        await fake_unleash(limited).read("s.model")
    assert retry.value.retry_after == 7.0

    def invalid(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            400,
            json={
                "name": "BadDataError",
                "message": "Request validation failed",
                "details": [{"message": '"[0].name" must be URL friendly.'}],
            },
        )

    with pytest.raises(FinalError) as final:
        await fake_unleash(invalid).read("s.model")
    assert str(final.value) == (
        "Unleash GET /api/admin/projects/default/features/s.model answered 400: "
        'Request validation failed; "[0].name" must be URL friendly.'
    )


async def test_token_is_sent_raw_and_url_normalised() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(404, json={"message": "no such feature"})

    assert await fake_unleash(handler).read("svc.tools.t.enabled") is None
    assert seen[0].headers["authorization"] == "*:*.secret-admin-token"
    assert str(seen[0].url) == (
        "http://unleash.test/api/admin/projects/default/features/svc.tools.t.enabled"
    )


async def test_missing_token_and_unusable_names_are_final() -> None:
    backend = UnleashBackend(
        UnleashConfig(url="http://unleash.test", token_env=TOKEN_ENV),
        httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(500))),
        environ={},
    )
    with pytest.raises(FinalError) as caught:
        await backend.read("svc.model")
    assert str(caught.value) == (
        "Unleash admin token: environment variable UNLEASH_ADMIN_TOKEN is not set"
    )
    with pytest.raises(FinalError, match="cannot be an Unleash feature name"):
        await backend.read("a" * 101)


def test_config_is_strict() -> None:
    config = UnleashConfig(url="https://unleash.example.com/api/", token_env="T")
    assert (config.url, config.project, config.environment) == (
        "https://unleash.example.com",
        "default",
        "development",
    )
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        UnleashConfig.model_validate({"url": "http://u", "token_env": "T", "token": "x"})
    with pytest.raises(ValidationError, match="is not a tool switch"):
        UnleashConfig(url="http://u", token_env="T", kill_switch_keys=["svc.model"])
