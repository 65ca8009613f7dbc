"""A real Prometheus scraping a tiny in-test exporter whose values the test sets.

The exporter serves ``/metrics`` in the text format from a dict the test changes; Prometheus
(the same binary the demo runs, through :class:`bot.demo.stack.Process`) scrapes it every
second. :meth:`PrometheusUnderTest.wait_for` waits until a query answers what the test set.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

from bot.demo.stack import Process, free_port


class Exporter:
    """``/metrics`` from ``values``: {(name, ((label, value), …)): number}."""

    def __init__(self) -> None:
        self.values: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        self._lock = threading.Lock()
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = exporter.render().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def set(self, name: str, value: float, **labels: str) -> None:
        with self._lock:
            self.values[(name, tuple(sorted(labels.items())))] = value

    def render(self) -> str:
        lines = []
        with self._lock:
            for (name, labels), value in sorted(self.values.items()):
                inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
                lines.append(f"{name}{{{inner}}} {value!r}")
        return "\n".join(lines) + "\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class PrometheusUnderTest:
    def __init__(self, binary: str, workdir: Path, exporter: Exporter) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        workdir.mkdir(parents=True, exist_ok=True)
        config = workdir / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            "scrape_configs:\n"
            "  - job_name: test\n"
            f"    static_configs: [{{targets: ['127.0.0.1:{exporter.port}']}}]\n",
            encoding="utf-8",
        )
        self.process = Process(
            "prometheus",
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            workdir / "prometheus.log",
        )

    def start(self, timeout: float = 30.0) -> None:
        self.process.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.process.check()
            try:
                if httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"Prometheus not ready in {timeout}s")

    def stop(self) -> None:
        self.process.stop()

    def value(self, query: str) -> float | None:
        body = httpx.get(f"{self.url}/api/v1/query", params={"query": query}, timeout=2).json()
        result = body["data"]["result"]
        return float(result[0]["value"][1]) if result else None

    def wait_for(self, query: str, expected: float, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        last: float | None = None
        while time.monotonic() < deadline:
            try:
                last = self.value(query)
            except httpx.HTTPError:
                last = None
            if last == expected:
                return
            time.sleep(0.2)
        raise AssertionError(f"{query} never became {expected} (last {last})")


def running(binary: str, workdir: Path) -> Iterator[tuple[PrometheusUnderTest, Exporter]]:
    exporter = Exporter()
    exporter.thread.start()
    prometheus = PrometheusUnderTest(binary, workdir, exporter)
    prometheus.start()
    try:
        yield prometheus, exporter
    finally:
        prometheus.stop()
        exporter.server.shutdown()
        exporter.server.server_close()
