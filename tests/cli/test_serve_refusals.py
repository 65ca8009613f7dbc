"""``ballast serve`` refuses to start with a clear reason, in this process (the same refusals
on real processes: tests/e2e/test_serve.py, test_sqlite_single_process.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from bot.cli import build_cli
from bot.store.serve_lock import hold_sqlite


@pytest.fixture(autouse=True)
def _no_logging_setup(monkeypatch: pytest.MonkeyPatch) -> None:
    """serve configures the process's logging before some refusals: not this test process's."""
    monkeypatch.setattr("bot.logs.configure_logging", lambda *_args: None)


def _serve(tmp_path: Path, *args: str, **env: str) -> Result:
    environment = {
        "BALLAST_DATABASE_URL": f"sqlite:///{tmp_path / 'ballast.db'}",
        "BALLAST_RUNBOOKS": str(Path(__file__).resolve().parents[2] / "runbooks"),
        **env,
    }
    return CliRunner().invoke(build_cli(), ["serve", *args], env=environment)


def test_a_network_address_with_no_way_in_is_refused(tmp_path: Path) -> None:
    result = _serve(tmp_path, "--host", "0.0.0.0")
    assert result.exit_code == 2, result.output
    assert "not starting: 0.0.0.0 is reachable from other machines and" in result.output
    assert "BALLAST_WEBHOOK_TOKEN" in result.output
    assert "Listen on 127.0.0.1, or (throwaway demos only) pass --insecure-allow-anonymous." in (
        result.output
    )


def test_an_invalid_runbook_is_named_with_its_place(tmp_path: Path) -> None:
    runbooks = tmp_path / "runbooks"
    runbooks.mkdir()
    (runbooks / "broken.yaml").write_text("id: broken\nmatch: [\n")
    result = _serve(tmp_path, BALLAST_RUNBOOKS=str(runbooks))
    assert result.exit_code == 1, result.output
    assert "not starting: the runbook catalog is invalid." in result.output
    assert "broken.yaml:" in result.output


def test_an_invalid_config_file_is_refused_naming_the_file_and_key(tmp_path: Path) -> None:
    config = tmp_path / "ballast.yaml"
    config.write_text("no_such_section: {}\n")
    result = _serve(tmp_path, BALLAST_CONFIG=str(config))
    assert result.exit_code == 1, result.output
    # The file and the key, and what is wrong with it.
    assert f"not starting: {config}: no_such_section: Extra inputs are not permitted" in (
        result.output
    )


def test_a_sqlite_database_another_serve_holds_is_refused(tmp_path: Path) -> None:
    held = hold_sqlite(str(tmp_path / "ballast.db"))
    try:
        result = _serve(tmp_path)
    finally:
        held.release()
    assert result.exit_code == 1, result.output
    assert "not starting: another `ballast serve` already uses the SQLite database" in (
        result.output
    )
