"""DirectApp: hot routes served ahead of the middleware stack, answering as the stack would."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import Request, Response
from fastapi.responses import JSONResponse
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from bot.api.direct import DirectApp, add_direct_route
from bot.api.errors import install_error_handlers
from bot.api.principals import endpoint_of


class Layers:
    """A middleware that counts the requests passing through the stack."""

    paths: list[str]

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            Layers.paths.append(scope["path"])
        await self.app(scope, receive, send)


async def hot(request: Request, key: str) -> Response:
    if key == "forbidden":
        raise HTTPException(403, "not you", headers={"X-Why": "test"})
    if key == "database":
        raise OperationalError("SELECT 1", {}, Exception("database is locked"))
    if key == "bug":
        raise RuntimeError("a bug")
    body = await request.body()
    return JSONResponse({"key": key, "route": endpoint_of(request), "body": body.decode()})


def build() -> DirectApp:
    app = DirectApp()
    install_error_handlers(app)
    add_direct_route(app, "/hot/{key}", hot, methods=["POST"])

    @app.get("/cold")
    async def cold() -> dict[str, str]:
        return {"cold": "yes"}

    app.add_middleware(Layers)
    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    Layers.paths = []
    transport = httpx.ASGITransport(app=build(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


async def test_direct_routes_skip_the_stack_and_others_do_not(client: httpx.AsyncClient) -> None:
    answer = await client.post("/hot/k1", content=b'{"context":{}}')
    assert answer.status_code == 200
    # The route's template, as through the router: metrics never label by a raw path.
    assert answer.json() == {"key": "k1", "route": "/hot/{key}", "body": '{"context":{}}'}
    assert (await client.get("/cold")).json() == {"cold": "yes"}
    assert Layers.paths == ["/cold"]


async def test_a_method_the_route_lacks_goes_through_the_stack(
    client: httpx.AsyncClient,
) -> None:
    answer = await client.get("/hot/k1")
    assert answer.status_code == 405
    assert Layers.paths == ["/hot/k1"]


async def test_exceptions_get_the_apps_handlers(client: httpx.AsyncClient) -> None:
    forbidden = await client.post("/hot/forbidden")
    assert (forbidden.status_code, forbidden.json()) == (403, {"detail": "not you"})
    assert forbidden.headers["x-why"] == "test"
    database = await client.post("/hot/database")
    assert database.status_code == 503
    assert database.headers["retry-after"]
    bug = await client.post("/hot/bug")
    assert bug.status_code == 500
    assert Layers.paths == []


async def test_with_a_tracer_provider_everything_goes_through_the_stack(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FastAPI's SERVER span per request (continuing the caller's trace) needs its stack."""
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: TracerProvider())
    answer = await client.post("/hot/k2")
    assert answer.json()["route"] == "/hot/{key}"
    assert Layers.paths == ["/hot/k2"]


async def test_a_root_path_goes_through_the_stack() -> None:
    Layers.paths = []
    app = build()
    app.root_path = "/ballast"
    transport = httpx.ASGITransport(app=app, root_path="/ballast")
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        answer = await http.post("/ballast/hot/k3")
    assert answer.json()["key"] == "k3"
    assert Layers.paths == ["/ballast/hot/k3"]


async def test_status_code_and_plain_function_handlers_are_used_as_by_the_stack() -> None:
    """Starlette looks up an HTTPException's status code first, and calls a handler that is a
    plain function as it is; a direct route gets the same answers."""
    Layers.paths = []
    app = build()

    def teapot(request: Request, err: Exception) -> Response:
        return JSONResponse({"teapot": str(err)}, status_code=418)

    app.add_exception_handler(403, teapot)
    app.add_exception_handler(RuntimeError, teapot)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        forbidden = await http.post("/hot/forbidden")
        bug = await http.post("/hot/bug")
    assert (forbidden.status_code, forbidden.json()) == (418, {"teapot": "403: not you"})
    assert (bug.status_code, bug.json()) == (418, {"teapot": "a bug"})
    assert Layers.paths == []
