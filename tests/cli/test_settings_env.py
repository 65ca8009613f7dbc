"""Settings from the environment: secrets from ``*_FILE`` files, and unknown names refused."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from bot.errors import ConfigError
from bot.settings import (
    CLI_OPTION_ENV,
    SECRET_ENV,
    TOOL_ENV,
    Settings,
    check_environment,
    known_environment,
)

REPO = Path(__file__).resolve().parents[2]
SECRETS = [(field, names[0]) for field, names in SECRET_ENV.items()]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith(("BALLAST_", "SLACK_")):
            monkeypatch.delenv(name)


@pytest.mark.parametrize(("field", "name"), SECRETS)
def test_each_secret_can_come_from_a_file(
    field: str, name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "secret"
    secret.write_text("s3cr3t value\n")  # as `echo ... > file` writes it
    monkeypatch.setenv(f"{name}_FILE", str(secret))
    assert getattr(Settings(), field).get_secret_value() == "s3cr3t value"


@pytest.mark.parametrize(("field", "name"), SECRETS)
def test_a_secret_given_twice_is_an_error(
    field: str, name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "secret"
    secret.write_text("from-file")
    monkeypatch.setenv(name, "from-env")
    monkeypatch.setenv(f"{name}_FILE", str(secret))
    with pytest.raises(ConfigError, match=f"both {name} and {name}_FILE are set"):
        Settings()


def test_a_missing_secret_file_names_the_variable_and_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "nope"
    monkeypatch.setenv("SLACK_SIGNING_SECRET_FILE", str(missing))
    with pytest.raises(ConfigError) as caught:
        Settings()
    assert str(caught.value) == (
        f"SLACK_SIGNING_SECRET_FILE={missing}: cannot read the file: No such file or directory"
    )


def test_the_environment_still_works_and_only_one_newline_is_stripped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BALLAST_API_TOKEN", "plain")
    secret = tmp_path / "hook"
    secret.write_text("  spaced  \n\n")
    monkeypatch.setenv("BALLAST_WEBHOOK_TOKEN_FILE", str(secret))
    settings = Settings()
    assert settings.api_token is not None
    assert settings.api_token.get_secret_value() == "plain"
    assert settings.webhook_token is not None
    assert settings.webhook_token.get_secret_value() == "  spaced  \n"


def test_unknown_variables_are_refused_with_a_suggestion() -> None:
    with pytest.raises(ConfigError) as caught:
        check_environment({"BALLAST_WEBHOOK_TOKN": "x", "BALLAST_ZZZ": "1", "HOME": "/"})
    message = str(caught.value)
    assert (
        "unknown environment variable BALLAST_WEBHOOK_TOKN; did you mean BALLAST_WEBHOOK_TOKEN?"
        in message
    )
    assert "unknown environment variable BALLAST_ZZZ (unset it" in message
    assert "BALLAST_ZZZ; did you mean" not in message
    check_environment(dict.fromkeys(known_environment(), "1"))  # all fine


def test_settings_names_are_known() -> None:
    known = known_environment()
    for name in ("BALLAST_DATABASE_URL", "BALLAST_LOG_FORMAT", "BALLAST_SLACK_CHANNEL"):
        assert name in known
    assert "BALLAST_API_TOKEN_FILE" in known
    assert "BALLAST_SLACK_BOT_TOKEN_FILE" in known
    assert known >= CLI_OPTION_ENV | TOOL_ENV


def test_every_ballast_variable_named_in_the_repo_is_known() -> None:
    """A new variable in code, tests, scripts or docs must be a setting or on the allowlist."""
    listed = subprocess.run(
        [
            "git",
            "grep",
            "-ohE",
            r"\bBALLAST_[A-Z0-9_]*[A-Z0-9]\b",
            "--",
            ".",
            ":!*.lock",
            ":!tests/cli",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    if listed.returncode not in (0, 1):
        pytest.skip("not a git checkout")
    names = set(listed.stdout.split())
    # tests/cli misspells names on purpose. Not variables Ballast reads: an example secret
    # name in a test of http_request's policy.
    names -= {"BALLAST_DB"}
    names = {n for n in names if not re.fullmatch(r"BALLAST_[A-Z]", n)}
    assert names - known_environment() == set()
