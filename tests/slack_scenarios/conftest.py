"""The Slack scenarios' app: the Slack emulator (one per module), the test runbooks, and the
server configured for Slack (real Bolt, the emulator's Web API, signed requests). A module
with other users, runbooks or configuration defines its own fixtures of these names."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.config import BallastConfig
from tests.slack_emulator import SlackEmulator
from tests.slack_scenarios.test_incident_in_slack import CHANNEL, OWNER, RUNBOOKS, SECRET, STRANGER


@pytest.fixture(scope="module")
def slack() -> Iterator[SlackEmulator]:
    with SlackEmulator(users=(OWNER, STRANGER), time_scale=60) as emulator:
        yield emulator


@pytest.fixture
def runbooks_dir() -> Path:
    return RUNBOOKS


@pytest.fixture
async def h(make_harness: Any, slack: SlackEmulator) -> Any:
    slack.reset()
    return await make_harness(
        config=BallastConfig.model_validate({"teams": {"@oncall": ["U0OWNER2"]}}),
        slack_bot_token="xoxb-ballast-test",
        slack_signing_secret=SECRET,
        slack_api_url=slack.base_url,
        slack_channel=CHANNEL.id,
    )
