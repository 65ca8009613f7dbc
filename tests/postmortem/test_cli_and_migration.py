"""``ballast postmortem ID [--out FILE]`` and migration 0005."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import inspect
from typer.testing import CliRunner

from bot.cli import build_cli
from bot.store.database import alembic_config
from tests.conftest import FIXTURES, REPO, DatabaseUnderTest

RUNBOOKS = REPO / "tests" / "api" / "runbooks"
AM = FIXTURES / "alertmanager-captured"


def test_cli_prints_and_writes_the_draft(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BALLAST_DATABASE_URL", f"sqlite:///{tmp_path / 'ballast.db'}")
    monkeypatch.setenv("BALLAST_RUNBOOKS", str(RUNBOOKS))
    runner = CliRunner()
    fixture = next(AM.glob("firing-*.json"))
    assert runner.invoke(build_cli(), ["replay", str(fixture)]).exit_code == 0
    printed = runner.invoke(build_cli(), ["postmortem", "1"])
    assert printed.exit_code == 0, printed.output
    assert printed.output.startswith("# Postmortem: ")
    assert "- **Acknowledged:** never acknowledged\n" in printed.output
    out = tmp_path / "drafts" / "pm.md"
    written = runner.invoke(build_cli(), ["postmortem", "1", "--out", str(out)])
    assert written.exit_code == 0
    assert out.read_text(encoding="utf-8") == printed.output
    missing = runner.invoke(build_cli(), ["postmortem", "42"])
    assert missing.exit_code == 1
    assert "incident 42 does not exist" in missing.output


async def test_migration_0005_goes_up_and_down(test_database: DatabaseUnderTest) -> None:
    db: Any = test_database.make()
    try:
        await db.migrate()
        async with db.engine.begin() as conn:

            def tables(c: Any) -> set[str]:
                return set(inspect(c).get_table_names()) & {"postmortems"}

            assert await conn.run_sync(tables) == {"postmortems"}
            await conn.run_sync(lambda c: command.downgrade(alembic_config(c), "0004"))
            assert await conn.run_sync(tables) == set()
            await conn.run_sync(lambda c: command.upgrade(alembic_config(c), "0005"))
            assert await conn.run_sync(tables) == {"postmortems"}
    finally:
        await db.close()
