"""``ballast tokens create``: the token is printed once, and the printed ballast.yaml line
(its SHA-256, never the token) makes the server accept exactly that token."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from bot.auth.tokens import find_token
from bot.cli import build_cli
from bot.config import load_config


def test_create_prints_the_token_once_and_a_line_that_accepts_it(tmp_path: Path) -> None:
    args = ["tokens", "create", "alice", "--role", "responder", "--slack-user", "U024BE7LH"]
    result = CliRunner().invoke(build_cli(), args)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    token = lines[1].strip()
    entry = lines[-1].strip()
    assert token.startswith("blst_")
    assert result.output.count(token) == 1
    assert token not in entry
    config = tmp_path / "ballast.yaml"
    config.write_text(f"auth:\n  tokens:\n    {entry}\n", encoding="utf-8")
    tokens = load_config(config).auth.tokens
    found = find_token(token, tokens)
    assert found is not None
    assert (found.name, found.slack_user, [r.value for r in found.roles]) == (
        "alice",
        "U024BE7LH",
        ["responder"],
    )
    assert find_token(token + "x", tokens) is None
    again = CliRunner().invoke(build_cli(), args)
    assert again.output.splitlines()[1].strip() != token  # a new token every time


def test_a_bad_role_or_user_is_refused() -> None:
    bad_role = CliRunner().invoke(build_cli(), ["tokens", "create", "x", "--role", "admin"])
    assert bad_role.exit_code == 1
    assert "roles.0" in bad_role.output
    group = ["tokens", "create", "x", "--role", "reader", "--slack-user", "@oncall"]
    assert CliRunner().invoke(build_cli(), group).exit_code == 1
