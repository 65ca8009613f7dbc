"""``let_waiting_requests_in``: a request already waiting in its socket is answered first.

On a real uvicorn server (httptools, as ``ballast serve`` runs), on asyncio's own loop and on
uvloop (what uvicorn picks when it is installed): the request's bytes are sent on a
keep-alive connection without the loop running, then background work yields and records
itself; the request must have been answered by then.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import uvicorn
import uvloop

from bot.runtime import turns
from bot.runtime.turns import let_waiting_requests_in

REQUEST = b"POST /evaluate HTTP/1.1\r\nhost: test\r\ncontent-length: 2\r\n\r\n{}"

LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": asyncio.new_event_loop,
    "uvloop": uvloop.new_event_loop,
}


def _run(make_loop: Callable[[], asyncio.AbstractEventLoop], main: Awaitable[Any]) -> Any:
    loop = make_loop()
    try:
        return loop.run_until_complete(main)
    finally:
        loop.close()


async def _order_of_work(turns_taken: Callable[[], Awaitable[None]]) -> list[str]:
    order: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await receive()
        order.append("served")
        headers = [(b"content-length", b"5")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"false"})

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        app, http="httptools", log_config=None, access_log=False, lifespan="off"
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve(sockets=[listener]))
    loop = asyncio.get_running_loop()
    await _started(server, serving)
    client = socket.create_connection(listener.getsockname())
    client.setblocking(False)
    try:
        await loop.sock_sendall(client, REQUEST)  # a first request: the connection is accepted
        await _answer(loop, client)
        order.clear()

        client.send(REQUEST)  # in the socket; the loop has not run since
        await turns_taken()
        order.append("background work")
        await _answer(loop, client)
        return order
    finally:
        client.close()
        server.should_exit = True
        await serving


async def _started(server: uvicorn.Server, serving: asyncio.Task[None]) -> None:
    """uvicorn tells that it started by a flag only."""
    loop_time = asyncio.get_running_loop().time
    until = loop_time() + 20
    while not server.started:
        assert not serving.done(), "uvicorn stopped before it started"
        assert loop_time() < until, "uvicorn did not start"
        await asyncio.sleep(0.01)


async def _answer(loop: asyncio.AbstractEventLoop, client: socket.socket) -> None:
    received = b""
    while not received.endswith(b"false"):
        chunk = await asyncio.wait_for(loop.sock_recv(client, 4096), 10)
        assert chunk, f"connection closed after {received!r}"
        received += chunk


@pytest.mark.parametrize("loop_kind", sorted(LOOPS))
def test_a_waiting_request_is_answered_before_the_work_after_the_yield(loop_kind: str) -> None:
    order = _run(LOOPS[loop_kind], _order_of_work(let_waiting_requests_in))
    assert order == ["served", "background work"]


@pytest.mark.parametrize("loop_kind", sorted(LOOPS))
def test_one_turn_is_not_enough(loop_kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Why there are several: with one turn the background work goes first (this test's own
    check: the one above would catch a yield that does not let the request in)."""
    monkeypatch.setattr(turns, "TURNS_FOR_A_WAITING_REQUEST", 1)
    order = _run(LOOPS[loop_kind], _order_of_work(let_waiting_requests_in))
    assert order == ["background work", "served"]
