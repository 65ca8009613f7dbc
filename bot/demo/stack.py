"""Start and stop the demo stack on loopback free ports: every process we start, we stop."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml

from bot.auth.tokens import config_line, new_token
from bot.demo.measure import Credentials

# The demo's trace search: a Grafana Explore link to Tempo (the demo runs no tracing backend,
# so the link is only shown: the incident, the Slack message and the postmortem carry it).
DEMO_TRACES_TITLE = "Tempo: the service's traces around the incident"
DEMO_TRACES_URL = (
    "http://localhost:3000/explore?schemaVersion=1&panes="
    "%7B%22t%22:%7B%22datasource%22:%22tempo%22,%22queries%22:%5B%7B%22refId%22:%22A%22,"
    "%22queryType%22:%22traceql%22,%22query%22:%22%7Bresource.service.name%3D"
    "%5C%22{service|json|json}%5C%22%7D%22%7D%5D,%22range%22:%7B%22from%22:%22{start_ms}%22,"
    "%22to%22:%22{end_ms}%22%7D%7D%7D"
)

REPO = Path(__file__).resolve().parents[2]
INSTALL_HINT = """Install them, or point Ballast at them:
  Debian/Ubuntu:  sudo apt-get install prometheus prometheus-alertmanager
  macOS:          brew install prometheus alertmanager
  upstream:       the prometheus and alertmanager release tarballs, on PATH
  anywhere:       BALLAST_DEMO_PROMETHEUS=/path/to/prometheus
                  BALLAST_DEMO_ALERTMANAGER=/path/to/alertmanager"""

# What each binary is called where, first match wins: the upstream name (tarball, Homebrew)
# and Debian's, which renames Alertmanager to avoid a clash with other packages.
BINARY_NAMES: dict[str, tuple[str, ...]] = {
    "prometheus": ("prometheus",),
    "alertmanager": ("alertmanager", "prometheus-alertmanager"),
}
BINARY_ENV = {
    "prometheus": "BALLAST_DEMO_PROMETHEUS",
    "alertmanager": "BALLAST_DEMO_ALERTMANAGER",
}


# The support assistant's scorecard (docs/scorecards.md), over the metrics
# examples/support-assistant exports, with the demo's 10 s windows: snapshots at open, after
# each verification and at resolve land in the incident, its Slack message and the postmortem.
# Shipped as that example's ballast.yaml, so `ballast runbooks validate --config` checks the
# panel names runbooks show against it; the demo adds its own settings to it.
DEMO_CONFIG = REPO / "examples" / "support-assistant" / "ballast.yaml"
DEMO_SCORECARD = DEMO_CONFIG.read_text(encoding="utf-8")


DEMO_ONCALL = "demo-oncall"
DEMO_ONCALL_USER = "U0DEMOONCALL"  # the person behind the token (its Slack user id)
# Demo time: the runbooks' verify checks every second and concludes within 20 s, over 3 s
# windows (the example's Prometheus scrapes every second), like the 10 s alert windows of
# examples/prometheus/rules.yml. Production timings stay as written in runbooks/.
DEMO_VERIFY = {"interval": "1s", "within": "20s"}
DEMO_WINDOW = "[3s]"
_RANGE = re.compile(r"\[[0-9]+[smhdwy]\]")


def demo_runbooks(source: Path, target: Path) -> Path:
    """A copy of the runbooks with every ``verify:`` on demo time (:data:`DEMO_VERIFY`,
    range windows :data:`DEMO_WINDOW`): a verdict in seconds, not minutes."""
    shutil.copytree(source, target, dirs_exist_ok=True)
    for path in sorted(target.rglob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        mitigations = data.get("mitigations", []) if isinstance(data, dict) else []
        timed = [m for m in mitigations if isinstance(m, dict) and m.get("verify")]
        for mitigation in timed:
            verify = mitigation["verify"]
            verify.update(DEMO_VERIFY)
            for check in verify.get("checks", []):
                check["query"] = _RANGE.sub(DEMO_WINDOW, check["query"])
        if timed:
            path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return target


class MissingBinary(RuntimeError):
    """A binary the demo needs is not on PATH nor where its variable points."""


class StackError(RuntimeError):
    """A process did not start, or exited early."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def find_binaries(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Paths of ``prometheus`` and ``alertmanager``, or :class:`MissingBinary` naming each.

    ``BALLAST_DEMO_PROMETHEUS`` / ``BALLAST_DEMO_ALERTMANAGER`` win when set (and must name an
    executable file); otherwise PATH is searched for each name in :data:`BINARY_NAMES`.
    """
    environ = os.environ if environ is None else environ
    found: dict[str, str] = {}
    problems: list[str] = []
    for role, names in BINARY_NAMES.items():
        variable = BINARY_ENV[role]
        explicit = environ.get(variable, "").strip()
        if explicit:
            # A path (checked as is) or a name (looked up on PATH); only an executable file.
            path = shutil.which(explicit, path=environ.get("PATH", os.defpath))
            if path is None:
                problems.append(f"{variable}={explicit} is not an executable file")
            else:
                found[role] = path
            continue
        for name in names:
            path = shutil.which(name, path=environ.get("PATH", os.defpath))
            if path is not None:
                found[role] = path
                break
        else:
            problems.append(f"{' or '.join(names)} not found on PATH (nor {variable} set)")
    if problems:
        raise MissingBinary("; ".join(problems) + ".\n" + INSTALL_HINT)
    return found


@dataclass
class Process:
    """One child process with its log file."""

    name: str
    argv: list[str]
    log: Path
    env: dict[str, str] | None = None
    cwd: Path | None = None
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.popen = subprocess.Popen(  # noqa: S603 - our own argv, no shell
                self.argv,
                cwd=self.cwd,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches us; we stop children in order
            )

    def check(self) -> None:
        if self.popen is not None and self.popen.poll() is not None:
            tail = self.log.read_text(errors="replace")[-2000:]
            raise StackError(f"{self.name} exited with {self.popen.returncode}:\n{tail}")

    def stop(self) -> None:
        if self.popen is None or self.popen.poll() is not None:
            return
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(10)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(5)


@dataclass
class Stack:
    """Ballast (SQLite), the support assistant, Prometheus and Alertmanager in ``workdir``."""

    workdir: Path
    runbooks: Path = REPO / "runbooks"
    examples: Path = REPO / "examples"
    rate: float = 20.0
    ports: dict[str, int] = field(default_factory=dict)
    processes: list[Process] = field(default_factory=list)
    binaries: dict[str, str] = field(default_factory=dict)  # role → path, once started
    # Made fresh each run, like a real deployment's: Ballast is closed by default. The demo's
    # reader token (auth.tokens of its ballast.yaml), Alertmanager's webhook token (a
    # credentials_file) and the assistant's OFREP token.
    reader_token: str = field(default_factory=new_token, repr=False)
    webhook_token: str = field(default_factory=new_token, repr=False)
    ofrep_token: str = field(default_factory=new_token, repr=False)
    # The deploy pipeline's token (automation role): records AI changes in the change log.
    pipeline_token: str = field(default_factory=new_token, repr=False)
    # The on-call's token (responder role, in the runbooks' owner team @support-ai-oncall):
    # approves the rung a mitigation ladder asks for, as they would with Slack's button.
    oncall_token: str = field(default_factory=new_token, repr=False)

    @property
    def oncall_headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.oncall_token}"}

    @property
    def reader_headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.reader_token}"}

    @property
    def pipeline_headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.pipeline_token}"}

    @property
    def credentials(self) -> Credentials:
        """What Alertmanager and the assistant send (for timing Ballast's share)."""
        return Credentials(
            webhook={"authorization": f"Bearer {self.webhook_token}"},
            ofrep={"x-api-key": self.ofrep_token},
        )

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    @property
    def ballast(self) -> str:
        return self.url("ballast")

    @property
    def assistant(self) -> str:
        return self.url("assistant")

    @property
    def prometheus(self) -> str:
        return self.url("prometheus")

    @property
    def alertmanager(self) -> str:
        return self.url("alertmanager")

    @property
    def postmortems(self) -> Path:
        return self.workdir / "postmortems"

    def start(self, on_started: Callable[[str, float], None] | None = None) -> None:
        """Start all four, each ready before the next; ``on_started(name, seconds)``."""
        binaries = self.binaries = find_binaries()
        self.workdir.mkdir(parents=True, exist_ok=True)
        for name in ("ballast", "assistant", "prometheus", "alertmanager"):
            self.ports[name] = free_port()
        steps: list[tuple[Process, str]] = [
            (self._ballast(), f"{self.ballast}/readyz"),
            (self._assistant(), f"{self.assistant}/healthz"),
            (
                self._alertmanager(binaries["alertmanager"]),
                f"{self.alertmanager}/-/ready",
            ),
            (self._prometheus(binaries["prometheus"]), f"{self.prometheus}/-/ready"),
        ]
        for process, ready_url in steps:
            started = time.monotonic()
            self.processes.append(process)
            process.start()
            self._wait_ready(process, ready_url)
            if on_started is not None:
                on_started(process.name, time.monotonic() - started)
        started = time.monotonic()
        self._wait_scraped()
        if on_started is not None:
            on_started("first scrape", time.monotonic() - started)

    def _wait_scraped(self, timeout: float = 30.0) -> None:
        """Until Prometheus has two scrapes of the assistant: ``rate()`` has data."""
        query = {"query": "rate(assistant_requests_total[10s]) > 0"}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check()
            try:
                body = httpx.get(f"{self.prometheus}/api/v1/query", params=query, timeout=2).json()
                if body["data"]["result"]:
                    return
            except (httpx.HTTPError, KeyError, ValueError):
                pass
            time.sleep(0.2)
        raise StackError(f"Prometheus did not scrape the assistant in {timeout:.0f}s")

    def check(self) -> None:
        """Raise :class:`StackError` if any process has exited."""
        for process in self.processes:
            process.check()

    def stop(self) -> None:
        """Stop in reverse order; safe to call twice and after a partial start."""
        for process in reversed(self.processes):
            process.stop()
        self.processes.clear()

    def _wait_ready(self, process: Process, url: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            process.check()
            try:
                if httpx.get(url, timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise StackError(
            f"{process.name} not ready at {url} after {timeout:.0f}s (log: {process.log})"
        )

    def _ballast(self) -> Process:
        config = self.workdir / "ballast.yaml"
        reader = config_line("demo-watcher", self.reader_token, ["reader"], None)
        pipeline = config_line("demo-pipeline", self.pipeline_token, ["automation"], None)
        oncall = config_line(DEMO_ONCALL, self.oncall_token, ["responder"], DEMO_ONCALL_USER)
        config.write_text(
            f"postmortem:\n  folder: {self.postmortems}\nauth:\n  tokens:\n    {reader}\n"
            f"    {pipeline}\n    {oncall}\n"
            f'teams:\n  "@support-ai-oncall": [{DEMO_ONCALL_USER}]\n'
            f"prometheus:\n  url: {self.prometheus}\n  timeout: 2\n{DEMO_SCORECARD}"
            f"traces:\n  - title: {json.dumps(DEMO_TRACES_TITLE)}\n"
            f"    url: {json.dumps(DEMO_TRACES_URL)}\n",
            encoding="utf-8",
        )
        env = {
            **os.environ,
            "BALLAST_DATABASE_URL": f"sqlite:///{self.workdir / 'data' / 'ballast.db'}",
            "BALLAST_RUNBOOKS": str(demo_runbooks(self.runbooks, self.workdir / "runbooks")),
            "BALLAST_CONFIG": str(config),
        }
        for name in ("BALLAST_API_TOKEN", "SLACK_BOT_TOKEN", "BALLAST_METRICS_TOKEN"):
            env.pop(name, None)
        env["BALLAST_WEBHOOK_TOKEN"] = self.webhook_token
        env["BALLAST_OFREP_TOKEN"] = self.ofrep_token
        argv = [sys.executable, "-m", "bot", "serve", "--port", str(self.ports["ballast"])]
        return Process("ballast", argv, self.workdir / "ballast.log", env=env, cwd=REPO)

    def _assistant(self) -> Process:
        argv = [
            sys.executable,
            str(self.examples / "support-assistant" / "app.py"),
            f"--port={self.ports['assistant']}",
            f"--ballast-url={self.ballast}",
            f"--rate={self.rate}",
        ]
        # The token reaches the assistant in its environment, never on its command line.
        env = {**os.environ, "BALLAST_OFREP_TOKEN": self.ofrep_token}
        return Process("support-assistant", argv, self.workdir / "assistant.log", env=env)

    def _alertmanager(self, binary: str) -> Process:
        text = (self.examples / "alertmanager" / "alertmanager.yml").read_text(encoding="utf-8")
        token_file = self.workdir / "ballast-webhook-token"
        token_file.write_text(self.webhook_token, encoding="utf-8")
        token_file.chmod(0o600)
        text = text.replace("http://127.0.0.1:8080", self.ballast)
        text = text.replace("/etc/alertmanager/ballast-webhook-token", str(token_file))
        config = self.workdir / "alertmanager.yml"
        config.write_text(text, encoding="utf-8")
        argv = [
            binary,
            f"--config.file={config}",
            f"--storage.path={self.workdir / 'alertmanager-data'}",
            f"--web.listen-address=127.0.0.1:{self.ports['alertmanager']}",
            "--cluster.listen-address=",
        ]
        return Process("alertmanager", argv, self.workdir / "alertmanager.log")

    def _prometheus(self, binary: str) -> Process:
        source = self.examples / "prometheus"
        text = (source / "prometheus.yml").read_text(encoding="utf-8")
        text = text.replace("127.0.0.1:9093", f"127.0.0.1:{self.ports['alertmanager']}")
        text = text.replace("127.0.0.1:8900", f"127.0.0.1:{self.ports['assistant']}")
        (self.workdir / "prometheus.yml").write_text(text, encoding="utf-8")
        shutil.copyfile(source / "rules.yml", self.workdir / "rules.yml")
        argv = [
            binary,
            f"--config.file={self.workdir / 'prometheus.yml'}",
            f"--storage.tsdb.path={self.workdir / 'prometheus-data'}",
            f"--web.listen-address=127.0.0.1:{self.ports['prometheus']}",
            "--rules.alert.resend-delay=1s",
        ]
        return Process("prometheus", argv, self.workdir / "prometheus.log")
