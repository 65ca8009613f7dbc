"""The CLI behaves like a conventional command: -h, --version, plain help, env vars, fast start."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from bot.cli import build_cli
from bot.cli.base import PayloadSource
from bot.intake.alert import AlertSource

REPO = Path(__file__).resolve().parents[2]


def every_command() -> list[list[str]]:
    """The argv prefix of every group and command, the root included."""
    root = typer.main.get_command(build_cli())
    found: list[list[str]] = []

    def walk(command: Any, path: list[str]) -> None:
        found.append(path)
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, [*path, name])

    walk(root, [])
    return found


COMMANDS = every_command()


def help_of(args: list[str], flag: str = "--help") -> str:
    result = CliRunner().invoke(build_cli(), [*args, flag], terminal_width=100)
    assert result.exit_code == 0, (args, result.output)
    return result.output


def test_every_command_is_found() -> None:
    names = {" ".join(path) for path in COMMANDS}
    assert {
        "serve",
        "incidents ack",
        "mitigations undo",
        "db upgrade",
        "runbooks validate",
    } <= names


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a) or "ballast")
def test_help_is_plain_and_h_works(args: list[str]) -> None:
    text = help_of(args)
    assert help_of(args, "-h") == text
    assert text.startswith("Usage: ballast")
    assert not re.search(r"<[a-z][^>]*>", text), text  # no <str>, <list[Path]>, <bool>
    assert "[[" not in text, text
    assert "]...]" not in text, text
    assert "\x1b[" not in text


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a) or "ballast")
def test_every_option_that_reads_the_environment_says_so(args: list[str]) -> None:
    root = typer.main.get_command(build_cli())
    ctx = root.context_class(root)  # typer 0.29 vendors click: no click.Context here
    command: Any = root
    for name in args:
        command = command.commands[name]
    text = help_of(args)
    for param in command.get_params(ctx):
        if param.envvar:
            assert f"env var: {param.envvar}" in " ".join(text.split()), (args, param.name)


def test_options_of_the_server_read_their_variables() -> None:
    assert "env var: BALLAST_HOST" in help_of(["serve"])
    assert "env var: BALLAST_PORT" in help_of(["serve"])
    flat = " ".join(help_of(["serve"]).split())
    for name in ("BALLAST_DATABASE_URL", "BALLAST_RUNBOOKS", "BALLAST_CONFIG"):
        assert f"env var: {name}" in flat
    for name in ("BALLAST_WEBHOOK_TOKEN", "SLACK_APP_TOKEN", "BALLAST_LOG_FORMAT", "_FILE"):
        assert name in flat
    remote = " ".join(help_of(["mitigations", "run"]).split())
    for name in ("BALLAST_URL", "BALLAST_ACTOR", "BALLAST_API_TOKEN"):
        assert f"env var: {name}" in remote


def test_version_comes_from_the_package_metadata() -> None:
    result = CliRunner().invoke(build_cli(), ["--version"])
    assert (result.exit_code, result.output) == (0, f"ballast {version('ballast')}\n")


def test_payload_source_choices_are_the_intake_sources() -> None:
    assert [s.value for s in PayloadSource] == [s.value for s in AlertSource]


def imported_by(*argv: str) -> set[str]:
    """The modules a real ``ballast`` process has loaded when the command is done."""
    probe = (
        "import atexit, json, sys\n"
        "atexit.register(lambda: print(json.dumps(sorted(sys.modules)), file=sys.stderr))\n"
        f"sys.argv = ['ballast', *{list(argv)!r}]\n"
        "from bot.cli import main\n"
        "main()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={k: v for k, v in os.environ.items() if not k.startswith("BALLAST_")},
    )
    assert result.returncode == 0, result.stderr
    return {name.split(".")[0] for name in json.loads(result.stderr.splitlines()[-1])}


HEAVY = {"fastapi", "sqlalchemy", "slack_bolt", "slack_sdk", "uvicorn", "alembic", "asyncpg"}


def test_help_imports_no_server_libraries() -> None:
    """The non-timing guard of start-up speed (docs/benchmarks.md, "CLI start-up")."""
    loaded = imported_by("--help")
    assert loaded & (HEAVY | {"pydantic", "httpx", "jinja2"}) == set()


def test_validating_runbooks_imports_no_server_libraries() -> None:
    loaded = imported_by("runbooks", "validate", "runbooks/")
    assert "pydantic" in loaded  # it did load the runbooks
    assert loaded & (HEAVY | {"httpx"}) == set()


def run_process(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("BALLAST_")}
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**base, **env},
    )


@pytest.mark.parametrize(
    "args", [["incidents", "list"], ["serve", "--port", "1"], ["db", "current"]]
)
def test_a_misspelt_variable_is_refused_with_the_right_name(
    args: list[str], tmp_path: Path
) -> None:
    result = run_process(*args, BALLAST_DATABSE_URL=f"sqlite:///{tmp_path}/x.db")
    assert result.returncode == 2
    assert (
        "unknown environment variable BALLAST_DATABSE_URL; did you mean BALLAST_DATABASE_URL?"
        in result.stderr
    )
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []
