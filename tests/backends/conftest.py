"""Real servers for backend tests: unleash-server (npm) on PostgreSQL, and a recording HTTP server.

The Unleash server is installed and started by ``scripts/unleash-server`` (what CI runs), once
per test session, on a free loopback port and a fresh PostgreSQL database dropped afterwards.
Without node/npm or PostgreSQL the Unleash tests skip, except under BALLAST_TEST_REQUIRE_ALL=1.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import POSTGRES_URL, REPO, need
from tests.e2e.processes import free_port, wait_until

UNLEASH_SCRIPT = REPO / "scripts" / "unleash-server"


@dataclass
class UnleashServer:
    url: str
    admin_token: str
    backend_token: str
    log_path: Path
    timings: dict[str, float] = field(default_factory=dict)

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")


def _postgres(sql: str, database_url: str) -> None:
    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(database_url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())


@pytest.fixture(scope="session")
def unleash_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UnleashServer]:
    need(
        shutil.which("node") is not None and shutil.which("npm") is not None,
        "node and npm (for unleash-server)",
    )
    need(POSTGRES_URL is not None, "PostgreSQL for unleash-server (set BALLAST_TEST_POSTGRES_URL)")
    assert POSTGRES_URL is not None
    workdir = tmp_path_factory.mktemp("unleash")
    log_path = workdir / "unleash.log"
    timings: dict[str, float] = {}

    started = time.monotonic()
    install = subprocess.run(
        [str(UNLEASH_SCRIPT), "install"], capture_output=True, text=True, timeout=900
    )
    timings["install_s"] = time.monotonic() - started
    need(install.returncode == 0, f"unleash-server install ({install.stderr.strip()[-500:]})")

    base = "postgresql://" + POSTGRES_URL.split("://", 1)[1]
    database = f"ballast_unleash_{uuid.uuid4().hex[:10]}"
    _postgres(f'CREATE DATABASE "{database}"', base)
    database_url = base.rsplit("/", 1)[0] + f"/{database}"
    port = free_port()
    server = UnleashServer(
        url=f"http://127.0.0.1:{port}",
        admin_token=f"*:*.{secrets.token_hex(16)}",
        backend_token=f"default:development.{secrets.token_hex(16)}",
        log_path=log_path,
        timings=timings,
    )
    env = {
        **os.environ,
        "INIT_ADMIN_API_TOKENS": server.admin_token,
        "INIT_BACKEND_API_TOKENS": server.backend_token,
    }
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [str(UNLEASH_SCRIPT), "run", str(port), database_url],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        started = time.monotonic()

        def healthy() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"unleash-server exited:\n{server.logs()[-3000:]}")
            return httpx.get(f"{server.url}/health", timeout=1).status_code == 200

        wait_until(healthy, 90, "unleash-server /health", interval=0.2)
        timings["start_s"] = time.monotonic() - started
        yield server
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        _postgres(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)', base)


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class RecordingServer:
    """A loopback HTTP server that records requests and answers from a script of responses."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.responses: list[tuple[int, dict[str, str], bytes | None]] = []
        self.delay_s = 0.0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                outer.requests.append(
                    Recorded(self.command, self.path, dict(self.headers.items()), body)
                )
                if outer.delay_s:
                    time.sleep(outer.delay_s)
                status, headers, payload = (
                    outer.responses.pop(0) if outer.responses else (200, {}, b"{}")
                )
                if payload is None:  # Echo: quote the request back, as careless servers do.
                    echoed = f"bad request: {dict(self.headers.items())} {body.decode()}"
                    payload = json.dumps(
                        {"message": echoed, "details": [{"message": echoed}], "errors": [echoed]}
                    ).encode()
                self.send_response(status)
                for name, value in {"content-type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = _handle

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def answer(self, status: int, body: Any, **headers: str) -> None:
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.responses.append((status, headers, payload))

    def answer_echo(self, status: int, **headers: str) -> None:
        """Answer with an error body quoting the request's headers and body."""
        self.responses.append((status, headers, None))

    def __enter__(self) -> RecordingServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def recording_server() -> Iterator[RecordingServer]:
    with RecordingServer() as server:
        yield server
