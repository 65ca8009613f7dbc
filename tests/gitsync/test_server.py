"""A server whose runbooks come from git: status in the API, reloads as syncs, replicas, start-up.

On SQLite and PostgreSQL (``make_harness`` runs on ``test_database``); two servers share one
database as two replicas would.
"""

from __future__ import annotations

import asyncio
import socket
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.cli.runbooks import status_lines
from bot.config import BallastConfig, GitSourceConfig, RunbooksConfig
from bot.errors import RunbookError
from tests.gitsync.remote import BROKEN, GitRemote, runbook


def git_config(url: str, workdir: Path, **git: Any) -> BallastConfig:
    return BallastConfig(
        runbooks=RunbooksConfig(
            git=GitSourceConfig(url=url, path="runbooks", workdir=workdir, **git)
        )
    )


async def test_the_api_says_which_commit_is_live_and_which_was_refused(
    make_harness: Any, remote: GitRemote, tmp_path: Path
) -> None:
    good = remote.commit({"runbooks/checkout.yaml": runbook()})
    h = await make_harness(git_config(remote.file_url, tmp_path / "one"))

    body = (await h.client.get("/api/v1/runbooks")).json()
    assert body["version"] == 1
    assert body["source"] == "git"
    assert body["revision"] == good
    assert body["git"]["commit"] == good
    assert body["git"]["refused"] is None
    assert body["git"]["url"] == remote.file_url
    assert body["git"]["ref"] == "main"
    [listed] = body["runbooks"]  # the existing fields are kept
    assert listed["id"] == "checkout/high-error-rate"
    assert listed["mitigations"] == ["review-all"]
    assert listed["path"].endswith(f"checkouts/{good}/runbooks/checkout.yaml")

    bad = remote.commit({"runbooks/checkout.yaml": BROKEN})
    reload = await h.client.post("/api/v1/runbooks/reload")
    assert reload.status_code == 422, reload.text
    assert reload.json()["reloaded"] is False
    assert any("runbooks/checkout.yaml:" in e and "yolo" in e for e in reload.json()["errors"])

    body = (await h.client.get("/api/v1/runbooks")).json()
    assert body["revision"] == good
    assert body["version"] == 1
    assert body["git"]["refused"]["commit"] == bad
    assert any("yolo" in e for e in body["git"]["refused"]["errors"])
    lines = status_lines(body)  # what `ballast runbooks status` prints from this JSON
    assert lines[0] == f"source: git {remote.file_url} main (folder runbooks)"
    assert lines[1].startswith(f"live:   {good} since ")
    assert any(line.startswith(f"refused: {bad} at ") and "fix and push" in line for line in lines)
    assert any("yolo" in line for line in lines)
    metrics = (await h.client.get("/metrics")).text
    assert "ballast_runbooks_git_refused 1.0" in metrics
    assert "ballast_runbooks_git_refused_commits_total 1.0" in metrics


async def test_two_replicas_on_one_database_converge(
    make_harness: Any, remote: GitRemote, tmp_path: Path
) -> None:
    remote.commit({"runbooks/checkout.yaml": runbook()})
    one = await make_harness(git_config(remote.file_url, tmp_path / "one"))
    two = await make_harness(git_config(remote.file_url, tmp_path / "two"))
    pushed = remote.commit({"runbooks/checkout.yaml": runbook(title="New")})

    for replica in (one, two):
        assert (await replica.client.post("/api/v1/runbooks/reload")).status_code == 200

    revisions = [(await r.client.get("/api/v1/runbooks")).json()["revision"] for r in (one, two)]
    assert revisions == [pushed, pushed]


async def test_a_first_start_without_a_reachable_remote_refuses_to_start(
    make_harness: Any, tmp_path: Path
) -> None:
    missing = (tmp_path / "nowhere.git").as_uri()
    with pytest.raises(RunbookError, match="no runbook catalog"):
        await make_harness(git_config(missing, tmp_path / "w"))


async def test_a_restart_with_the_remote_gone_serves_the_last_good_commit(
    make_harness: Any, remote: GitRemote, tmp_path: Path
) -> None:
    good = remote.commit({"runbooks/checkout.yaml": runbook()})
    await make_harness(git_config(remote.file_url, tmp_path / "w"))
    remote.bare.rename(remote.bare.with_name("gone.git"))  # the remote is unreachable

    h = await make_harness(git_config(remote.file_url, tmp_path / "w"))

    body = (await h.client.get("/api/v1/runbooks")).json()
    assert body["revision"] == good
    assert [r["id"] for r in body["runbooks"]] == ["checkout/high-error-rate"]
    for _ in range(200):  # the sync right after start fails in the background
        body = (await h.client.get("/api/v1/runbooks")).json()
        if body["git"]["fetch_error"] is not None:
            break
        await asyncio.sleep(0.05)
    assert "does not appear to be a git repository" in body["git"]["fetch_error"]
    assert body["revision"] == good


async def test_a_hung_remote_does_not_hold_a_restart(
    make_harness: Any, remote: GitRemote, tmp_path: Path
) -> None:
    """Restarted on its last good checkout, a server is ready at once even when the remote
    accepts connections and never answers; the sync gives up at its timeout, in the background."""
    good = remote.commit({"runbooks/checkout.yaml": runbook()})
    await make_harness(git_config(remote.file_url, tmp_path / "w"))
    with socket.socket() as hung:  # listens, never accepts: a connection hangs
        hung.bind(("127.0.0.1", 0))
        hung.listen(8)
        url = f"http://127.0.0.1:{hung.getsockname()[1]}/runbooks.git"
        started = time.monotonic()
        h = await make_harness(git_config(url, tmp_path / "w", timeout=timedelta(seconds=30)))
        assert time.monotonic() - started < 10
        body = (await h.client.get("/api/v1/runbooks")).json()
        assert body["revision"] == good
        assert body["git"]["fetch_error"] is None  # still trying
