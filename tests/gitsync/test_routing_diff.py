"""``ballast runbooks diff``: real alerts replayed through two revisions of a runbook repo.

The fixture history is a real git repository with one commit per state: the second commit makes
one change of each kind the report lists, so each section must show exactly its alert.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bot.cli import build_cli
from tests.gitsync.remote import BROKEN, GitRemote, runbook

ALERTS = [
    {"labels": {"alertname": name, "service": "checkout"}}
    for name in ("Moves", "Moves", "Handled", "Untriaged", "Dropped", "Same", "Nothing")
]


def history(remote: GitRemote) -> tuple[str, str]:
    """OLD, then NEW with one change of each kind."""
    old = remote.commit(
        {
            "runbooks/moves.yaml": runbook("team/moves-old", alertname="Moves"),
            "runbooks/handled.yaml": runbook("team/handled", alertname="Handled"),
            "runbooks/dropped.yaml": runbook("team/dropped", alertname="Dropped"),
            "runbooks/same.yaml": runbook("team/same", alertname="Same"),
        },
        "old",
        push=False,
    )
    new = remote.commit(
        {
            # Moves: handled by another runbook (its old one now matches another alertname).
            "runbooks/moves.yaml": runbook("team/moves-old", alertname="NoLongerMoves"),
            "runbooks/moves-new.yaml": runbook("team/moves-new", alertname="Moves"),
            # Handled: same runbook, first mitigation lowers review to off (params, risk) and
            # runs it without approval? No: auto must be low risk, so only params and risk.
            "runbooks/handled.yaml": runbook("team/handled", alertname="Handled", level='"off"'),
            # Untriaged: a new runbook takes it.
            "runbooks/untriaged.yaml": runbook("team/untriaged", alertname="Untriaged"),
            # Dropped: its runbook is deleted.
            "runbooks/dropped.yaml": None,
        },
        "new",
        push=False,
    )
    return old, new


def run(*args: str) -> Any:
    return CliRunner().invoke(build_cli(), ["runbooks", "diff", *args])


@pytest.fixture
def alerts_file(tmp_path: Path) -> Path:
    path = tmp_path / "alerts.json"
    path.write_text(json.dumps({"alerts": ALERTS}))
    return path


def test_each_kind_of_change_between_two_revisions(remote: GitRemote, alerts_file: Path) -> None:
    old, new = history(remote)

    result = run("--alerts", str(alerts_file), "--repo", str(remote.work), old, new)

    assert result.exit_code == 1, result.output
    report = result.output
    assert "Replayed 7 alerts (6 distinct label sets)" in report
    sections = report.split("#### ")
    moved = next(s for s in sections if s.startswith("Alerts whose runbook changes (1)"))
    assert "| 2 |" in moved
    assert 'alertname="Moves"' in moved
    assert "team/moves-old | team/moves-new |" in moved
    new_matches = next(s for s in sections if s.startswith("New matches (were untriaged) (1)"))
    assert 'alertname="Untriaged"' in new_matches
    assert "team/untriaged" in new_matches
    lost = next(s for s in sections if s.startswith("Lost matches: newly untriaged alerts (1)"))
    assert 'alertname="Dropped"' in lost
    assert "(triage: no runbook)" in lost
    handled = next(s for s in sections if s.startswith("Same runbook, changed first"))
    assert 'alertname="Handled"' in handled
    assert '"level": "all"' in handled
    assert '"level": "off"' in handled
    assert "risk low → high" in handled
    assert "Same" not in report.replace("Same runbook", "")
    assert "Nothing" not in report


def test_no_change_exits_0_and_folders_work(
    remote: GitRemote, alerts_file: Path, tmp_path: Path
) -> None:
    old, _ = history(remote)
    same = run("--alerts", str(alerts_file), "--repo", str(remote.work), old, old)
    assert same.exit_code == 0, same.output
    assert "No alert changes runbook, match or first move." in same.output

    folder = remote.work / "runbooks"  # the checkout: NEW as a folder
    result = run("--alerts", str(alerts_file), "--repo", str(remote.work), old, str(folder))
    assert result.exit_code == 1, result.output


def test_an_invalid_new_exits_2_with_its_errors(remote: GitRemote, alerts_file: Path) -> None:
    old, _ = history(remote)
    broken = remote.commit({"runbooks/same.yaml": BROKEN}, "break", push=False)

    result = run("--alerts", str(alerts_file), "--repo", str(remote.work), old, broken)

    assert result.exit_code == 2, result.output
    assert f"{broken} is invalid" in result.output
    assert "runbooks/same.yaml:" in result.output
    assert "yolo" in result.output


def test_an_unknown_revision_is_named(remote: GitRemote, alerts_file: Path) -> None:
    old, _ = history(remote)
    result = run("--alerts", str(alerts_file), "--repo", str(remote.work), old, "nope")
    assert result.exit_code == 1
    assert "nope: neither a folder nor a revision" in result.output


async def test_the_server_lists_recent_alerts_for_the_diff(make_harness: Any, clock: Any) -> None:
    """``GET /api/v1/alerts?since=``: the latest state of each alert, on SQLite and PostgreSQL."""
    h = await make_harness()
    labels = {"alertname": "Replayed", "service": "checkout"}
    for status in ("firing", "resolved"):
        alert = {"labels": labels, "status": status, "starts_at": "2026-11-27T02:00:00Z"}
        await h.client.post("/webhooks/generic", json={"alerts": [alert]})
    answer = await h.client.get("/api/v1/alerts?since=7d")
    assert answer.status_code == 200, answer.text
    [alert] = answer.json()["alerts"]
    assert alert["labels"] == labels
    assert alert["status"] == "resolved"
    clock.advance(hours=2)
    assert (await h.client.get("/api/v1/alerts?since=1h")).json()["alerts"] == []
    assert len((await h.client.get("/api/v1/alerts?since=3h")).json()["alerts"]) == 1
    assert (await h.client.get("/api/v1/alerts?since=soon")).status_code == 422
    assert (await h.client.get("/api/v1/alerts?since=99999999999y")).status_code == 422


async def test_alerts_export_reads_the_store(
    make_harness: Any, database_kind: str, test_database: Any, tmp_path: Path, remote: GitRemote
) -> None:
    """``ballast alerts export`` prints what the API answers, from the store; its output
    feeds ``runbooks diff --alerts``."""
    if database_kind != "sqlite":
        pytest.skip("the CLI reaches PostgreSQL by URL; the test schema is not in a URL")
    h = await make_harness()
    labels = {"alertname": "Moves", "service": "checkout"}
    await h.client.post("/webhooks/generic", json={"alerts": [{"labels": labels}]})
    args = ["alerts", "export", "--since", "10y", "--database-url", test_database.url]
    exported = await asyncio.to_thread(CliRunner().invoke, build_cli(), args)  # its own loop
    assert exported.exit_code == 0, exported.output
    body = json.loads(exported.output)
    assert [a["labels"] for a in body["alerts"]] == [labels]
    alerts = tmp_path / "exported.json"
    alerts.write_text(exported.output)
    old, new = history(remote)
    result = run("--alerts", str(alerts), "--repo", str(remote.work), old, new)
    assert result.exit_code == 1
    assert "team/moves-old | team/moves-new |" in result.output
