"""What the deployment files must agree with, read from the code itself (not copied here)."""

from __future__ import annotations

import hashlib
import re
import shlex
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import typer
import yaml
from pydantic import SecretStr

from tests.conftest import REPO
from tests.e2e.processes import BallastServer

DEPLOY = REPO / "deploy"
KUBERNETES = DEPLOY / "kubernetes"
SYSTEMD = DEPLOY / "systemd"
DOCS = REPO / "docs" / "deploy.md"


def setting_env_names() -> set[str]:
    """Every environment variable ``Settings`` reads, plus ``<NAME>_FILE`` for the secrets."""
    from bot.settings import Settings

    prefix = Settings.model_config.get("env_prefix", "")
    names: set[str] = set()
    for name, info in Settings.model_fields.items():
        alias = info.validation_alias
        if alias is None:
            own = {f"{prefix}{name}".upper()}
        elif isinstance(alias, str):
            own = {alias.upper()}
        else:
            own = {str(choice).upper() for choice in getattr(alias, "choices", [])}
        names |= own
        if _is_secret(info.annotation):
            names |= {f"{n}_FILE" for n in own}
    return names


def secret_env_names() -> set[str]:
    """The settings that hold secrets (the ones a ``_FILE`` variant exists for)."""
    from bot.settings import Settings

    prefix = Settings.model_config.get("env_prefix", "")
    names: set[str] = set()
    for name, info in Settings.model_fields.items():
        if not _is_secret(info.annotation):
            continue
        alias = info.validation_alias
        if alias is None:
            names.add(f"{prefix}{name}".upper())
        elif isinstance(alias, str):
            names.add(alias.upper())
        else:
            names |= {str(c).upper() for c in getattr(alias, "choices", [])}
    return names


def _is_secret(annotation: Any) -> bool:
    if annotation is SecretStr:
        return True
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_is_secret(arg) for arg in typing.get_args(annotation))
    return False


def cli_command(*path: str) -> Any:
    """The (click) command ``ballast <path...>``, or None when there is no such command.

    Duck-typed: typer may bring its own copy of click, whose classes are not ``click``'s."""
    from bot.cli import build_cli

    command: Any = typer.main.get_command(build_cli())
    for name in path:
        subcommands = getattr(command, "commands", None)
        if not isinstance(subcommands, dict) or name not in subcommands:
            return None
        command = subcommands[name]
    return command


def option_names(command: Any) -> set[str]:
    names: set[str] = set()
    for param in command.params:
        if getattr(param, "param_type_name", "") == "option":
            names |= {*param.opts, *param.secondary_opts}
    return names


@dataclass
class ServeCall:
    """``ballast serve --host H --port P`` taken apart."""

    options: dict[str, str] = field(default_factory=dict)

    @property
    def host(self) -> str | None:
        return self.options.get("--host")

    @property
    def port(self) -> int | None:
        return int(self.options["--port"]) if "--port" in self.options else None


def parse_serve(argv: list[str]) -> ServeCall:
    """Check that ``argv`` runs ``ballast serve`` with real options, and return them."""
    assert argv, "empty command"
    assert Path(argv[0]).name == "ballast", f"{argv[0]!r} is not the ballast command"
    assert argv[1:2] == ["serve"], f"not `ballast serve`: {argv}"
    serve = cli_command("serve")
    assert serve is not None
    known = option_names(serve)
    call = ServeCall()
    rest = argv[2:]
    while rest:
        word = rest.pop(0)
        name, eq, value = word.partition("=")
        assert name in known, f"`ballast serve` has no option {name} (it has {sorted(known)})"
        if not eq:
            value = rest.pop(0)
        call.options[name] = value
    return call


def graceful_shutdown_seconds() -> float:
    """From SIGTERM to the end of the grace for work in flight: ``BALLAST_SHUTDOWN_DELAY`` plus
    ``BALLAST_SHUTDOWN_GRACE``, their defaults in ``bot/settings.py`` (bot/runtime/graceful.py)."""
    from bot.settings import Settings

    fields = Settings.model_fields
    return float(fields["shutdown_delay"].default) + float(fields["shutdown_grace"].default)


def dockerfile() -> str:
    return (REPO / "Dockerfile").read_text(encoding="utf-8")


def dockerfile_uid() -> int:
    found = re.search(r"useradd\b[^\n]*--uid[ =](\d+)", dockerfile())
    assert found, "the Dockerfile creates no user with --uid"
    return int(found.group(1))


def dockerfile_cmd() -> list[str]:
    import json

    found = re.search(r"^CMD (\[.*\])\s*$", dockerfile(), re.MULTILINE)
    assert found, "the Dockerfile has no exec-form CMD"
    cmd: list[str] = json.loads(found.group(1))
    return cmd


def dockerfile_env() -> dict[str, str]:
    """The ``ENV`` names and values of the final stage."""
    final = dockerfile().rsplit("\nFROM ", 1)[-1]
    env: dict[str, str] = {}
    for block in re.findall(r"^ENV (.*?)(?<!\\)$", final, re.MULTILINE | re.DOTALL):
        for word in shlex.split(block.replace("\\\n", " ")):
            name, _, value = word.partition("=")
            env[name] = value
    return env


def markdown_blocks(path: Path) -> list[tuple[str, str, str]]:
    """(comment line before the fence or "", info string, body) of every fenced block."""
    blocks: list[tuple[str, str, str]] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        fence = re.match(r"^(```+|~~~+)(.*)$", lines[i])
        if not fence:
            i += 1
            continue
        before = lines[i - 1].strip() if i > 0 and lines[i - 1].strip().startswith("<!--") else ""
        body: list[str] = []
        i += 1
        while i < len(lines) and not lines[i].startswith(fence.group(1)):
            body.append(lines[i])
            i += 1
        blocks.append((before, fence.group(2).strip(), "\n".join(body) + "\n"))
        i += 1
    return blocks


def shell_commands(script: str) -> list[list[str]]:
    """The simple commands of a shell snippet (continuation lines joined, comments dropped)."""
    joined = script.replace("\\\n", " ")
    commands = []
    pending = ""
    for line in joined.splitlines():
        pending = f"{pending}\n{line}" if pending else line
        try:
            words = shlex.split(pending, comments=True)
        except ValueError:  # a quoted string spans lines: read on
            continue
        pending = ""
        if words:
            commands.append(words)
    assert not pending, f"unbalanced quotes in {script!r}"
    return commands


def load(name: str) -> list[dict[str, Any]]:
    with (KUBERNETES / name).open(encoding="utf-8") as file:
        return [doc for doc in yaml.safe_load_all(file) if doc is not None]


def all_manifests() -> dict[str, list[dict[str, Any]]]:
    return {
        path.name: load(path.name)
        for path in sorted(KUBERNETES.glob("*.yaml"))
        if path.name != "kustomization.yaml"
    }


def one(kind: str, name: str | None = None) -> dict[str, Any]:
    found = [
        doc
        for docs in all_manifests().values()
        for doc in docs
        if doc["kind"] == kind and (name is None or doc["metadata"]["name"] == name)
    ]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


def ballast_container(workload: dict[str, Any]) -> dict[str, Any]:
    containers = pod_spec(workload)["containers"]
    assert len(containers) == 1
    container: dict[str, Any] = containers[0]
    return container


def tool_failure(tool: str) -> dict[str, object]:
    """An Alertmanager notification that runbooks/ turns into one incident per tool."""
    labels = {
        "alertname": "ToolCallFailureRate",
        "service": "support-assistant",
        "tool": tool,
        "env": "prod",
        "severity": "page",
    }
    return {
        "version": "4",
        "status": "firing",
        "receiver": "ballast",
        "groupKey": f"{{}}:{{tool={tool!r}}}",
        "groupLabels": {"tool": tool},
        "commonLabels": labels,
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.test",
        "truncatedAlerts": 0,
        "alerts": [
            {
                "status": "firing",
                "labels": labels,
                "annotations": {"summary": f"{tool} calls failing"},
                "startsAt": "2026-12-03T20:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus.test/graph",
                "fingerprint": hashlib.sha256(tool.encode()).hexdigest()[:16],
            }
        ],
    }


def api_headers(server: BallastServer) -> dict[str, str]:
    """The server's own BALLAST_API_TOKEN (a reader among its roles), as the deployment set it."""
    token = server.env.get("BALLAST_API_TOKEN")
    if token is None and "BALLAST_API_TOKEN_FILE" in server.env:
        token = Path(server.env["BALLAST_API_TOKEN_FILE"]).read_text(encoding="utf-8").strip()
    assert token, "the deployment under test sets no BALLAST_API_TOKEN: its API is closed"
    return {"authorization": f"Bearer {token}"}


def incident_tools(server: BallastServer) -> set[str]:
    headers = api_headers(server)
    body = httpx.get(f"{server.url}/api/v1/incidents", headers=headers, timeout=5).json()
    tools = set()
    for incident in body["incidents"]:
        url = f"{server.url}/api/v1/incidents/{incident['id']}"
        detail = httpx.get(url, headers=headers, timeout=5).json()
        tools |= {alert["labels"]["tool"] for alert in detail["alerts"]}
    return tools
