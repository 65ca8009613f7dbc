"""The language-model polish against a real OpenAI-compatible server on loopback."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bot.config import PostmortemLlmConfig
from bot.postmortem.polish import check_polish, facts_in, polish_summary
from tests.conftest import Clock
from tests.postmortem.conftest import config_for
from tests.postmortem.scripted import scripted_incident

SUMMARY = (
    "Incident #7 “search failing on svc-a” (severity `sev2`, service `svc`) opened at "
    "2026-11-27 03:01:00 UTC from alert `ToolFailing`. It was acknowledged by `U0OWNER2` at "
    "2026-11-27 03:04:00 UTC. It was resolved at 2026-11-27 03:25:00 UTC by `generic`, 24m "
    "after it opened."
)


class FakeModel:
    """Answers /v1/chat/completions as ``mode`` says; records what it was asked."""

    def __init__(self) -> None:
        self.mode = "reword"
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []

    async def complete(self, request: Request) -> JSONResponse:
        body = await request.json()
        self.requests.append(body)
        self.headers.append(dict(request.headers))
        text = body["messages"][-1]["content"]
        if self.mode == "error":
            return JSONResponse({"error": {"message": "overloaded"}}, status_code=503)
        if self.mode == "slow":
            await asyncio.sleep(2)
        if self.mode == "reword":
            text = "In short: " + text.replace("It was", "The incident was")
        elif self.mode == "drop":
            text = text.replace(" at 2026-11-27 03:04:00 UTC", " shortly after")
        elif self.mode == "invent":
            text += " About 5000 users were affected."
        return JSONResponse({"choices": [{"message": {"role": "assistant", "content": text}}]})


@pytest.fixture
async def model() -> AsyncIterator[tuple[FakeModel, str]]:
    fake = FakeModel()
    app = Starlette(routes=[Route("/v1/chat/completions", fake.complete, methods=["POST"])])
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    for _ in range(500):  # uvicorn has no "started" event to wait on
        if server.started:
            break
        await asyncio.sleep(0.01)
    yield fake, f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task
    sock.close()


def llm(url: str, timeout: float = 1.0, key_env: str | None = None) -> PostmortemLlmConfig:
    return PostmortemLlmConfig(url=url, model="tiny", timeout=timeout, api_key_env=key_env)


def test_facts_in_extracts_timestamps_durations_numbers_and_code() -> None:
    assert facts_in(SUMMARY) == {
        "number:#7",
        "code:sev2",
        "code:svc",
        "code:ToolFailing",
        "code:U0OWNER2",
        "code:generic",
        "time:2026-11-27 03:01:00 UTC",
        "time:2026-11-27 03:04:00 UTC",
        "time:2026-11-27 03:25:00 UTC",
        "duration:24m",
    }
    assert check_polish(SUMMARY, SUMMARY.replace("24m", "about half an hour")) == (
        "dropped duration:24m"
    )


async def test_reworded_summary_is_kept(model: tuple[FakeModel, str]) -> None:
    fake, url = model
    async with httpx.AsyncClient() as http:
        polished = await polish_summary(
            http, llm(url, key_env="LLM_KEY"), SUMMARY, {"LLM_KEY": "sk-test"}
        )
    assert polished is not None
    assert polished.startswith("In short: Incident #7")
    assert fake.requests[0]["model"] == "tiny"
    assert fake.requests[0]["messages"][-1] == {"role": "user", "content": SUMMARY}
    assert fake.headers[0]["authorization"] == "Bearer sk-test"


@pytest.mark.parametrize("mode", ["drop", "invent", "error", "slow"])
async def test_falls_back_when_a_fact_is_dropped_or_added_or_the_server_fails(
    model: tuple[FakeModel, str], mode: str
) -> None:
    fake, url = model
    fake.mode = mode
    async with httpx.AsyncClient() as http:
        assert await polish_summary(http, llm(url, timeout=0.5), SUMMARY, {}) is None
    assert len(fake.requests) == 1


async def test_unreachable_server_falls_back() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    async with httpx.AsyncClient() as http:
        assert await polish_summary(http, llm(f"http://127.0.0.1:{port}"), SUMMARY, {}) is None


@pytest.mark.parametrize("mode", ["reword", "drop"])
async def test_resolve_stores_the_polished_draft_only_when_facts_survive(
    make_harness: Any, clock: Clock, tmp_path: Path, model: tuple[FakeModel, str], mode: str
) -> None:
    fake, url = model
    fake.mode = mode
    folder = tmp_path / "pm"
    h = await make_harness(
        api_token="api-token",
        config=config_for(folder, {"url": url, "model": "tiny", "timeout": 2}),
    )
    incident = await scripted_incident(h, clock)
    await h.services.postmortems.drain()
    stored = await h.services.postmortems.latest(incident)
    assert stored is not None
    assert stored.polished is (mode == "reword")
    assert stored.summary.startswith("In short: ") is (mode == "reword")
    assert "2026-11-27 03:04:00 UTC" in stored.summary
    [written] = list(folder.iterdir())
    assert f"\n\n{stored.summary}\n\n" in written.read_text(encoding="utf-8")
    assert json.loads(json.dumps(fake.requests))[0]["temperature"] == 0
