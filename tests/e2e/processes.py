"""Real processes on loopback for end-to-end tests: ``ballast serve`` and Alertmanager."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: Any, timeout: float, what: str, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except (httpx.HTTPError, OSError) as err:
            last = err
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def last_errors(log: str) -> str:
    """Each error of a server's log (in the JSON format, with the end of its traceback), first
    in a failure message: what a truncated CI print of a failed start must still show."""
    found = []
    for line in log.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            if " ERROR " in line:  # the plain log format
                found.append(line.strip())
            continue
        if isinstance(entry, dict) and entry.get("level") in ("error", "critical"):
            tail = str(entry.get("exc", "")).strip().splitlines()[-2:]
            found.append(" | ".join([str(entry.get("msg", "")), *tail]))
    return "\n  ".join(found) or "(no error logged)"


class BallastServer:
    """``ballast serve`` as a child process, as a user would run it."""

    def __init__(self, workdir: Path, env: dict[str, str], log_path: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.env = {**os.environ, **env}
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> float:
        """Start and wait for /readyz; returns seconds until it answered 200.

        ``timeout`` is a hang guard, not a goal (start-up time is bench/'s): a loaded 2-core CI
        machine has taken over 20 s to start a server."""
        started = time.monotonic()
        log = self.log_path.open("ab")
        since = log.tell()  # this start's lines (the log keeps every start's)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bot", "serve", "--port", str(self.port)],
            cwd=self.workdir,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()

        def ready() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                lines = self.log_path.read_bytes()[since:].decode(errors="replace")
                raise AssertionError(
                    f"ballast serve exited with {self.process.returncode}; "
                    f"why: {last_errors(lines)}\nthis start's log:\n{lines}"
                )
            return httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200

        wait_until(ready, timeout, "ballast serve to be ready")
        return time.monotonic() - started

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks, no flush, like a crash or an OOM kill."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


class Alertmanager:
    """Debian's prometheus-alertmanager on loopback, clustering off, short group timings."""

    def __init__(self, binary: str, workdir: Path, webhook_url: str, token_file: Path) -> None:
        self.binary = binary
        self.workdir = workdir
        self.port = free_port()
        self.config = workdir / "alertmanager.yml"
        self.config.write_text(
            f"""
route:
  receiver: ballast
  group_by: [alertname, service]
  group_wait: 1s
  group_interval: 2s
  repeat_interval: 1h
receivers:
  - name: ballast
    webhook_configs:
      - url: {webhook_url}
        send_resolved: true
        max_alerts: 0
        http_config:
          authorization:
            type: Bearer
            credentials_file: {token_file}
"""
        )
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        log = (self.workdir / "alertmanager.log").open("ab")
        self.process = subprocess.Popen(
            [
                self.binary,
                f"--config.file={self.config}",
                f"--storage.path={self.workdir / 'am-data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--cluster.listen-address=",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        wait_until(
            lambda: httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200,
            20,
            "Alertmanager to be ready",
        )

    def post_alerts(self, alerts: list[dict[str, Any]]) -> None:
        response = httpx.post(f"{self.url}/api/v2/alerts", json=alerts, timeout=5)
        response.raise_for_status()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
