"""The git syncer against a real remote: a bare repository over file:// and smart HTTP."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import stat
from datetime import timedelta
from pathlib import Path

import pytest

from actions import default_registry
from bot.config import GitSourceConfig
from bot.gitsync.git import Git, GitCredentials, GitError
from bot.gitsync.syncer import RefusedCommit, RunbookSyncer, SyncOutcome, last_good_folder
from bot.metrics import Metrics
from bot.runbooks.catalog import LiveCatalog
from tests.gitsync.remote import BROKEN, GitRemote, SmartHttpRemote, runbook


def make_syncer(
    url: str,
    workdir: Path,
    *,
    token: str | None = None,
    poll: float = 60,
    path: str = "runbooks",
    refused: list[RefusedCommit] | None = None,
) -> tuple[RunbookSyncer, LiveCatalog, Metrics]:
    source = GitSourceConfig(
        url=url,
        ref="main",
        path=path,
        poll_interval=timedelta(seconds=poll),
        timeout=timedelta(seconds=30),
        workdir=workdir,
    )
    live = LiveCatalog()
    metrics = Metrics()

    async def record(commit: RefusedCommit) -> None:
        assert refused is not None
        refused.append(commit)

    syncer = RunbookSyncer(
        source,
        live,
        default_registry(),
        metrics,
        token=token,
        on_refused=record if refused is not None else None,
    )
    return syncer, live, metrics


async def live_at(live: LiveCatalog, commit: str, within: float = 15) -> None:
    """Wait until ``commit`` is the live catalog's; fail after ``within`` seconds."""
    for _ in range(int(within / 0.05)):
        revision = live.current.revision
        if revision is not None and revision.commit == commit:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{commit} did not go live within {within}s: {live.current.revision}")


def metric(metrics: Metrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


async def test_initial_sync_over_file_url(remote: GitRemote, tmp_path: Path) -> None:
    commit = remote.commit({"runbooks/checkout.yaml": runbook(), "README.md": "not a runbook"})
    syncer, live, metrics = make_syncer(remote.file_url, tmp_path / "ballast")

    result = await syncer.sync()

    assert result.outcome is SyncOutcome.LIVE
    assert result.commit == commit
    assert live.version == 1
    assert list(live.current.runbooks) == ["checkout/high-error-rate"]
    revision = live.current.revision
    assert revision is not None
    assert revision.commit == commit
    assert live.current.repository_path("checkout/high-error-rate") == "runbooks/checkout.yaml"
    status = syncer.status()
    assert status["commit"] == commit
    assert status["refused"] is None
    assert status["since"] is not None
    assert status["checked_at"] is not None
    assert metric(metrics, "ballast_runbooks_git_syncs_total", result="live") == 1
    assert metric(metrics, "ballast_runbooks_git_live_since_seconds") > 0
    # Only the runbook folder is checked out; the state names the live commit.
    assert not (tmp_path / "ballast" / "checkouts" / commit / "README.md").exists()
    state = json.loads((tmp_path / "ballast" / "state.json").read_text())
    assert state["live"]["commit"] == commit

    again = await syncer.sync()
    assert again.outcome is SyncOutcome.UNCHANGED
    assert live.version == 1


async def test_a_broken_push_is_refused_and_the_last_good_commit_stays_live(
    remote: GitRemote, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    good = remote.commit({"runbooks/checkout.yaml": runbook()})
    refused: list[RefusedCommit] = []
    syncer, live, metrics = make_syncer(remote.file_url, tmp_path / "b", refused=refused)
    await syncer.sync()
    bad = remote.commit({"runbooks/checkout.yaml": BROKEN}, "break it")

    with caplog.at_level(logging.ERROR, logger="bot.gitsync.syncer"):
        result = await syncer.sync()

    assert result.outcome is SyncOutcome.REFUSED
    assert result.commit == bad
    assert any("runbooks/checkout.yaml:" in e and "yolo" in e for e in result.errors), result
    revision = live.current.revision
    assert revision is not None
    assert revision.commit == good, "the last good commit stays live"
    assert live.version == 1
    status = syncer.status()
    assert status["commit"] == good
    assert status["refused"]["commit"] == bad
    assert status["refused"]["live_commit"] == good
    assert any("yolo" in e for e in status["refused"]["errors"])
    assert f"commit {bad} of" in caplog.text  # journaled
    assert "yolo" in caplog.text
    assert metric(metrics, "ballast_runbooks_git_refused") == 1
    assert metric(metrics, "ballast_runbooks_git_refused_commits_total") == 1
    # Polled again: still refused, but reported once.
    assert (await syncer.sync()).outcome is SyncOutcome.REFUSED
    assert [r.commit for r in refused] == [bad]
    assert metric(metrics, "ballast_runbooks_git_refused_commits_total") == 1
    assert not (tmp_path / "b" / "checkouts" / bad).exists()

    fixed = remote.commit({"runbooks/checkout.yaml": runbook(title="Fixed")}, "fix it")
    assert (await syncer.sync()).outcome is SyncOutcome.LIVE
    revision = live.current.revision
    assert revision is not None
    assert revision.commit == fixed
    assert metric(metrics, "ballast_runbooks_git_refused") == 0
    assert syncer.status()["refused"]["commit"] == bad, "the last refused one is still shown"


async def test_a_moved_runbook_folder_is_refused(remote: GitRemote, tmp_path: Path) -> None:
    good = remote.commit({"runbooks/checkout.yaml": runbook()})
    syncer, live, _ = make_syncer(remote.file_url, tmp_path / "b")
    await syncer.sync()
    remote.git("mv", "runbooks", "ops")
    moved = remote.commit({}, "move the folder")

    result = await syncer.sync()

    assert result.outcome is SyncOutcome.REFUSED
    assert result.commit == moved
    assert "runbooks.git.path names no folder" in result.errors[0]
    revision = live.current.revision
    assert revision is not None
    assert revision.commit == good


async def test_a_good_push_is_picked_up_by_the_poll(remote: GitRemote, tmp_path: Path) -> None:
    remote.commit({"runbooks/checkout.yaml": runbook()})
    syncer, live, _ = make_syncer(remote.file_url, tmp_path / "b", poll=1)
    await syncer.sync()
    task = asyncio.create_task(syncer.loop.run())
    try:
        pushed = remote.commit({"runbooks/checkout.yaml": runbook(title="Now")})
        await live_at(live, pushed)
    finally:
        await syncer.loop.stop(task)
    assert live.current.runbooks["checkout/high-error-rate"].title.startswith("Now")


async def test_a_wake_syncs_at_once(remote: GitRemote, tmp_path: Path) -> None:
    """What the push webhook does: no wait for the (hour-long) poll."""
    remote.commit({"runbooks/checkout.yaml": runbook()})
    syncer, live, _ = make_syncer(remote.file_url, tmp_path / "b", poll=3600)
    await syncer.sync()
    task = asyncio.create_task(syncer.loop.run())
    try:
        pushed = remote.commit({"runbooks/checkout.yaml": runbook(title="Woken")})
        syncer.wake()
        await live_at(live, pushed, within=5)
    finally:
        await syncer.loop.stop(task)


async def test_smart_http_with_a_token_that_is_never_shown(
    remote: GitRemote, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    commit = remote.commit({"runbooks/checkout.yaml": runbook()})
    token = "s3cr3t-token-value"
    served = SmartHttpRemote(remote, user="x-access-token", token=token)
    served.start()
    try:
        syncer, live, _ = make_syncer(served.url, tmp_path / "good", token=token)
        assert (await syncer.sync()).outcome is SyncOutcome.LIVE
        revision = live.current.revision
        assert revision is not None
        assert revision.commit == commit
        assert any("git-upload-pack" in r for r in served.requests)

        wrong, wrong_live, _ = make_syncer(served.url, tmp_path / "wrong", token="not-" + token)
        with caplog.at_level(logging.DEBUG):
            result = await wrong.sync()
        assert result.outcome is SyncOutcome.FAILED
        assert wrong_live.version == 0
        assert result.detail is not None
        assert "fetch failed" in result.detail
        shown = caplog.text + str(result.detail) + json.dumps(wrong.status())
        assert token not in shown
        assert wrong.status()["fetch_error"] == result.detail
    finally:
        served.stop()


async def test_restart_with_the_remote_down_serves_the_last_good_commit(
    remote: GitRemote, http_remote: SmartHttpRemote, tmp_path: Path
) -> None:
    good = remote.commit({"runbooks/checkout.yaml": runbook()})
    syncer, _, _ = make_syncer(http_remote.url, tmp_path / "b")
    await syncer.sync()
    remote.commit({"runbooks/checkout.yaml": BROKEN})
    assert (await syncer.sync()).outcome is SyncOutcome.REFUSED
    http_remote.stop()

    restarted, live, _ = make_syncer(http_remote.url, tmp_path / "b")
    restored = restarted.restore()

    assert restored is not None
    assert restored.commit == good
    revision = live.current.revision
    assert revision is not None
    assert revision.commit == good
    assert list(live.current.runbooks) == ["checkout/high-error-rate"]
    result = await restarted.sync()
    assert result.outcome is SyncOutcome.FAILED
    assert live.current.revision is not None
    assert live.current.revision.commit == good
    assert restarted.status()["refused"]["commit"] != good  # the refusal survived too
    assert last_good_folder(restarted.source) == tmp_path / "b" / "checkouts" / good / "runbooks"


async def test_two_replicas_converge_on_the_same_commit(
    remote: GitRemote, http_remote: SmartHttpRemote, tmp_path: Path
) -> None:
    remote.commit({"runbooks/checkout.yaml": runbook()})
    one, live_one, _ = make_syncer(http_remote.url, tmp_path / "one")
    two, live_two, _ = make_syncer(remote.file_url, tmp_path / "two")
    await asyncio.gather(one.sync(), two.sync())
    pushed = remote.commit({"runbooks/checkout.yaml": runbook(title="Both")})

    await asyncio.gather(one.sync(), two.sync())

    assert live_one.current.revision is not None
    assert live_two.current.revision is not None
    assert live_one.current.revision.commit == live_two.current.revision.commit == pushed


def test_git_runs_with_a_clean_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_ASKPASS", "/usr/bin/steal")
    monkeypatch.setenv("SSH_AUTH_SOCK", "/tmp/agent")
    monkeypatch.setenv("GIT_CONFIG_PARAMETERS", "'credential.helper'='store'")
    git = Git(tmp_path / "repo.git", timeout=5, credentials=GitCredentials(token="t0k"))
    env = git.environment()
    assert not {"GIT_ASKPASS", "SSH_AUTH_SOCK", "GIT_CONFIG_PARAMETERS"} & set(env)
    assert env["GIT_TERMINAL_PROMPT"] == "0"
    assert env["GIT_CONFIG_GLOBAL"] == os.devnull
    assert env["GIT_CONFIG_NOSYSTEM"] == "1"
    entries = {
        env[f"GIT_CONFIG_KEY_{i}"]: env[f"GIT_CONFIG_VALUE_{i}"]
        for i in range(int(env["GIT_CONFIG_COUNT"]))
    }
    assert entries["credential.helper"] == ""
    assert entries["http.extraHeader"].startswith("Authorization: Basic ")
    ssh = GitCredentials(ssh_key=Path("/k/id ed"), known_hosts=Path("/k/known_hosts"))
    command = Git(tmp_path / "r.git", timeout=5, credentials=ssh).environment()["GIT_SSH_COMMAND"]
    assert "StrictHostKeyChecking=yes" in command
    assert "'/k/id ed'" in command


async def test_a_hung_git_is_killed_at_its_timeout(tmp_path: Path) -> None:
    fake = tmp_path / "git"
    fake.write_text("#!/bin/sh\nsleep 30\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    git = Git(tmp_path / "repo.git", timeout=0.3, executable=str(fake))
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(GitError, match=r"timed out after 0\.3s"):
        await git.run("fetch")
    assert loop.time() - started < 5
