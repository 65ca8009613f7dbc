"""``ballast controls list|set|history`` against the database, exact output and exit codes."""

from __future__ import annotations

import json
import re
from pathlib import Path

from typer.testing import CliRunner

from bot.cli.controls import controls_app

TOOL = "support.tools.web_search.enabled"


def run(url: str, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(controls_app, list(args), env={"BALLAST_DATABASE_URL": url})
    return result.exit_code, result.stdout, result.stderr


def test_set_list_history(cli_database_url: str) -> None:
    url = cli_database_url
    assert run(url, "list") == (0, "no control values\n", "")

    code, out, _ = run(url, "set", TOOL, "false", "--actor", "U024BE7LH", "--reason", "errors")
    assert (code, out) == (0, f"{TOOL}: (unset) → false (version 1)\n")
    code, out, _ = run(url, "set", TOOL, "TRUE", "--actor", "bob")
    assert (code, out) == (0, f"{TOOL}: false → true (version 2)\n")
    code, out, _ = run(url, "set", TOOL, "true", "--actor", "bob")
    assert (code, out) == (0, f"{TOOL}: true → true (version 2) (unchanged)\n")
    code, out, _ = run(url, "set", "support.prompt_version", "true", "--actor", "bob")
    assert (code, out) == (0, "support.prompt_version: (unset) → true (version 1)\n")
    run(url, "set", "billing.model", "gpt-4o", "--actor", "carol")

    code, out, _ = run(url, "list", "--service", "support")
    assert code == 0
    lines = out.splitlines()
    assert [line.split()[:3] for line in lines] == [
        ["support.prompt_version", "true", "v1"],
        [TOOL, "true", "v2"],
    ]
    assert lines[1].endswith("  bob")

    code, out, _ = run(url, "list", "--json")
    listed = json.loads(out)["controls"]
    assert [(c["key"], c["value"]) for c in listed] == [
        ("billing.model", "gpt-4o"),
        ("support.prompt_version", "true"),  # a string: only tool switches parse true/false
        (TOOL, True),
    ]

    code, out, _ = run(url, "history", TOOL)
    assert code == 0
    assert [re.sub(r"^\S+ \S+\s+", "", line) for line in out.splitlines()] == [
        "bob            true → true  [builtin]",
        "bob            false → true  [builtin]",
        "U024BE7LH      (unset) → false  [builtin]  (errors)",
    ]
    code, out, _ = run(url, "history", TOOL, "--json", "--limit", "1")
    history = json.loads(out)
    assert history["key"] == TOOL
    assert [(h["before"], h["after"], h["actor"]) for h in history["history"]] == [
        (True, True, "bob")
    ]


def test_refusals_name_the_problem(cli_database_url: str) -> None:
    url = cli_database_url
    code, _, err = run(url, "set", TOOL, "off", "--actor", "bob")
    assert (code, err) == (
        1,
        f"ballast: {TOOL} is a tool switch: VALUE must be true or false, not 'off'\n",
    )
    code, _, err = run(url, "set", "support.autonomy", "manual", "--actor", "bob")
    assert code == 1
    assert err == (
        "ballast: support.autonomy must be one of full, supervised, suggest_only, off; "
        'got "manual"\n'
    )
    code, _, err = run(url, "set", "support.autonmy", "off", "--actor", "bob")
    assert code == 1
    assert err.startswith('ballast: "support.autonmy" is not a control key: use ')
    code, _, err = run(url, "set", TOOL, "false")
    assert code == 2  # --actor is required
    assert "--actor" in err
    code, _, err = run(url, "history", "Support.Model")
    assert code == 1
    assert "is not a valid control key" in err
    code, _, err = run(url, "list", "--service", "Bad Name")
    assert code == 1
    assert run(url, "list") == (0, "no control values\n", "")


def test_set_refuses_a_service_held_elsewhere(cli_database_url: str, tmp_path: Path) -> None:
    flags = tmp_path / "flags.json"
    flags.write_text('{"flags": {}}')
    config = tmp_path / "ballast.yaml"
    config.write_text(f"services:\n  rag:\n    backend: {{type: flagd, path: {flags}}}\n")
    env = {"BALLAST_DATABASE_URL": cli_database_url, "BALLAST_CONFIG": str(config)}
    result = CliRunner().invoke(controls_app, ["set", "rag.model", "m", "--actor", "bob"], env=env)
    assert result.exit_code == 1
    assert result.stderr.startswith("ballast: rag's controls live in flagd (services.rag.backend")
    ok = CliRunner().invoke(controls_app, ["set", "support.model", "m", "--actor", "b"], env=env)
    assert ok.exit_code == 0
