"""A refused commit is posted once to runbooks.git.notify_channel, however many replicas refuse it.

Two servers on one database (SQLite or PostgreSQL), each with its own working copy, refuse the
same broken push; the message goes through the outbox (one row per idempotency key) to the
Slack emulator, once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.config import BallastConfig, GitSourceConfig, RunbooksConfig
from tests.gitsync.remote import BROKEN, GitRemote, runbook
from tests.slack_emulator import SlackEmulator
from tests.slack_emulator.server import DEFAULT_CHANNEL


@pytest.fixture(scope="module")
def slack() -> Iterator[SlackEmulator]:
    with SlackEmulator(time_scale=60) as emulator:
        yield emulator


async def test_a_refused_commit_is_posted_once(
    make_harness: Any, remote: GitRemote, tmp_path: Path, slack: SlackEmulator
) -> None:
    slack.reset()
    good = remote.commit({"runbooks/checkout.yaml": runbook()})
    replicas = []
    for name in ("one", "two"):
        source = GitSourceConfig(
            url=remote.file_url,
            path="runbooks",
            workdir=tmp_path / name,
            notify_channel=DEFAULT_CHANNEL.id,
        )
        replicas.append(
            await make_harness(
                BallastConfig(runbooks=RunbooksConfig(git=source)),
                slack_bot_token="xoxb-ballast-test",
                slack_signing_secret="8f742231b10e8888abcd99yyyzzz85a5",
                slack_api_url=slack.base_url,
            )
        )
    bad = remote.commit({"runbooks/checkout.yaml": BROKEN}, "break it")

    for replica in replicas:
        assert (await replica.client.post("/api/v1/runbooks/reload")).status_code == 422
        assert (await replica.client.post("/api/v1/runbooks/reload")).status_code == 422
    for _ in range(3):
        for replica in replicas:
            await replica.services.delivery.drain()
        await asyncio.sleep(0.05)

    [message] = slack.messages(DEFAULT_CHANNEL.id)
    assert (
        f"Runbooks commit {bad[:12]} on main was refused; {good[:12]} stays live."
        in (message["text"])
    )
    assert "runbooks/checkout.yaml:" in message["text"]
    assert "yolo" in message["text"]
