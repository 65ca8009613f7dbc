"""deploy/systemd/ballast.service: hardened, valid for systemd, and true to the code it runs."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO, need_binary
from tests.deploy.deployment_facts import (
    SYSTEMD,
    graceful_shutdown_seconds,
    parse_serve,
    secret_env_names,
    setting_env_names,
)
from tests.e2e.processes import BallastServer, free_port, wait_until

UNIT = SYSTEMD / "ballast.service"
ENV_FILE = SYSTEMD / "ballast.env"


def unit_entries(text: str, *, commented: bool = False) -> list[tuple[str, str, str]]:
    """(section, key, value) of every assignment, in order; keys repeat (Environment=).

    With ``commented``, ``#Key=value`` lines (the optional parts a user uncomments) too."""
    entries: list[tuple[str, str, str]] = []
    section = ""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        if commented and re.match(r"^#[A-Z][A-Za-z]+=", line):
            line = line[1:]
        if not line or line.startswith(("#", ";")):
            continue
        key, sep, value = line.partition("=")
        assert sep, f"not an assignment: {raw!r}"
        entries.append((section, key.strip(), value.strip()))
    return entries


def service(key: str, *, commented: bool = False) -> list[str]:
    text = UNIT.read_text(encoding="utf-8")
    return [v for s, k, v in unit_entries(text, commented=commented) if s == "Service" and k == key]


def environment(*, commented: bool = False) -> dict[str, str]:
    env: dict[str, str] = {}
    for value in service("Environment", commented=commented):
        for word in shlex.split(value):
            name, _, val = word.partition("=")
            env[name] = val
    return env


def env_file_names(path: Path) -> set[str]:
    """Names set in an EnvironmentFile, including the commented-out examples."""
    names = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        found = re.match(r"^#?([A-Z][A-Z0-9_]*)=", line.strip())
        if found:
            names.add(found.group(1))
    return names


def test_hardening() -> None:
    assert service("DynamicUser") == ["yes"] or service("User"), "never run as root"
    assert service("StateDirectory") == ["ballast"]
    assert service("NoNewPrivileges") == ["yes"]
    assert service("ProtectSystem") == ["strict"]
    assert service("ProtectHome") == ["yes"]
    assert service("PrivateTmp") == ["yes"]
    assert service("CapabilityBoundingSet") == [""]
    assert service("Restart") == ["on-failure"]


def test_exec_start_is_a_real_serve_command() -> None:
    (exec_start,) = service("ExecStart")
    call = parse_serve(shlex.split(exec_start))
    assert call.host is not None
    assert call.port is not None
    (reload,) = service("ExecReload")
    assert "-HUP" in reload.split(), "SIGHUP is what reloads the runbooks"


def test_stop_timeout_outlasts_the_graceful_shutdown() -> None:
    (timeout,) = service("TimeoutStopSec")
    assert float(timeout) > graceful_shutdown_seconds() + 5


def test_env_names_are_real_settings() -> None:
    known = setting_env_names()
    used = set(environment(commented=True)) | env_file_names(ENV_FILE)
    assert used - known == set()


def test_database_lives_in_the_state_directory() -> None:
    url = environment()["BALLAST_DATABASE_URL"]
    (state,) = service("StateDirectory")
    assert url.startswith(f"sqlite:///%S/{state}/"), url
    (workdir,) = service("WorkingDirectory")
    assert workdir == f"%S/{state}"  # postmortem drafts go to a writable folder


def test_every_secret_comes_from_a_credential() -> None:
    """Each *_FILE points into %d at a LoadCredential= of that name; no secret in plain env."""
    for commented in (False, True):
        env = environment(commented=commented)
        credentials = {
            value.split(":", 1)[0] for value in service("LoadCredential", commented=commented)
        }
        referenced = set()
        for name, value in env.items():
            if name.endswith("_FILE"):
                assert value.startswith("%d/"), f"{name}={value}: not a systemd credential"
                referenced.add(value.removeprefix("%d/"))
        assert referenced == credentials
    secrets = secret_env_names()
    assert not secrets & set(environment(commented=True)), "a secret in Environment="
    assert not secrets & env_file_names(ENV_FILE), "a secret in the environment file"
    assert {"BALLAST_WEBHOOK_TOKEN_FILE", "BALLAST_API_TOKEN_FILE"} <= set(environment())


def test_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = need_binary("systemd-analyze")
    ballast = Path(sys.executable).with_name("ballast")
    assert ballast.is_file(), "the ballast console script is not installed beside python"
    (exec_start,) = service("ExecStart")
    unit = tmp_path / "ballast.service"
    text = UNIT.read_text(encoding="utf-8")
    unit.write_text(text.replace(shlex.split(exec_start)[0], str(ballast)), encoding="utf-8")
    result = subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60, check=False
    )
    # verify exits 0 on unknown keys and bad values too, so any message at all is a failure.
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr
    assert result.stdout.strip() == "", result.stdout


@pytest.mark.slow
def test_the_unit_command_starts_with_its_environment(tmp_path: Path) -> None:
    """ExecStart, Environment= and the env file as systemd would pass them (%S and %d filled
    in, credentials copied into %d), on a free port: the server comes up with its database in
    the state directory."""
    state, credentials, config = tmp_path / "state", tmp_path / "credentials", tmp_path / "etc"
    (state / "ballast").mkdir(parents=True)
    credentials.mkdir()
    for value in service("LoadCredential"):
        name = value.split(":", 1)[0]
        (credentials / name).write_text(f"token-{name}\n", encoding="utf-8")
    env = {}
    for name, value in environment().items():
        env[name] = value.replace("%S", str(state)).replace("%d", str(credentials))
    for line in ENV_FILE.read_text(encoding="utf-8").splitlines():  # EnvironmentFile=, after
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            env[name.strip()] = value.strip()
    config.mkdir()
    shutil.copytree(REPO / "runbooks", config / "runbooks")
    env["BALLAST_RUNBOOKS"] = str(config / "runbooks")  # /etc/ballast/runbooks in the unit
    (exec_start,) = service("ExecStart")
    argv = shlex.split(exec_start)
    port = free_port()
    argv[argv.index("--port") + 1] = str(port)
    server = BallastServer(state / "ballast", env, tmp_path / "ballast.log")
    server.port = port
    with server.log_path.open("wb") as log:
        server.process = subprocess.Popen(
            [Path(sys.executable).with_name("ballast").as_posix(), *argv[1:]],
            cwd=state / "ballast",
            env=server.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until(
            lambda: httpx.get(f"{server.url}/readyz", timeout=1).status_code == 200,
            30,
            "the unit's server to be ready",
        )
        assert (state / "ballast" / "ballast.db").is_file()
        unauthenticated = httpx.post(f"{server.url}/webhooks/generic", json={}, timeout=5)
        assert unauthenticated.status_code == 401, "BALLAST_WEBHOOK_TOKEN_FILE was not read"
        authorized = httpx.post(
            f"{server.url}/webhooks/generic",
            content=b"{}",
            headers={"Authorization": "Bearer token-webhook-token"},
            timeout=5,
        )
        assert authorized.status_code != 401, authorized.text
    finally:
        server.stop()
