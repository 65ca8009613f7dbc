"""The verdict and the scorecard in Slack, through the real outbox and delivery into the Slack
emulator (real HTTP), with the real Prometheus: the incident message shows the verified line
and the compact scorecard, and the thread gets the verdict."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from bot.config import BallastConfig
from tests.slack_emulator import SlackEmulator
from tests.slack_emulator.payloads import SlackUser
from tests.slack_emulator.server import DEFAULT_CHANNEL
from tests.verification.conftest import LiveClock
from tests.verification.prometheus_server import Exporter, PrometheusUnderTest

METRIC = "test_tool_error_ratio"
OWNER = SlackUser("U0OWNER1", "owner")


@pytest.fixture(scope="module")
def slack() -> Iterator[SlackEmulator]:
    with SlackEmulator(users=(OWNER,), time_scale=60) as emulator:
        yield emulator


async def settle(h: Any, clock: LiveClock) -> None:
    for _ in range(3):
        await h.settle()
        await h.services.scorecards.drain()
        clock.advance(seconds=16)  # past the per-message update budget
        await h.services.delivery.drain()
        await asyncio.sleep(0.05)


async def test_verdict_and_scorecard_in_the_message_and_thread(
    make_harness: Any,
    slack: SlackEmulator,
    prometheus: PrometheusUnderTest,
    exporter: Exporter,
    clock: LiveClock,
) -> None:
    slack.reset()
    tool = f"t{uuid.uuid4().hex[:8]}"
    query = f'{METRIC}{{tool="{tool}"}}'
    exporter.set(METRIC, 0.31, tool=tool)
    prometheus.wait_for(query, 0.31)
    config = {
        "teams": {"@oncall": ["U0OWNER1"]},
        "prometheus": {"url": prometheus.url, "timeout": 2},
        "services": {
            "svc": {
                "scorecard": [
                    {
                        "name": "tool failure rate",
                        "query": f"max({query})",
                        "unit": "%",
                        "scale": 100,
                        "good": "down",
                    }
                ]
            }
        },
    }
    h = await make_harness(
        config=BallastConfig.model_validate(config),
        slack_bot_token="xoxb-ballast-test",
        slack_signing_secret="8f742231b10e8888abcd99yyyzzz85a5",
        slack_api_url=slack.base_url,
        slack_channel=DEFAULT_CHANNEL.id,
    )
    alert = {"labels": {"alertname": "ToolFailing", "service": "svc", "tool": tool}}
    await h.client.post("/webhooks/generic", json={"alerts": [alert]})
    await settle(h, clock)
    [message] = slack.messages(DEFAULT_CHANNEL.id)
    assert "tool failure rate 31%" in json.dumps(message["blocks"], ensure_ascii=False)

    exporter.set(METRIC, 0.0, tool=tool)
    prometheus.wait_for(query, 0.0)
    # The clock has moved 48 s by now: the first check is due, and it sees 0 now.
    assert await h.services.timers.tick() == 1
    await settle(h, clock)

    [message] = slack.messages(DEFAULT_CHANNEL.id)
    blocks = json.dumps(message["blocks"], ensure_ascii=False)
    assert "Verified disable-tool: tool failure rate 0.31 → 0 (&lt; 0.05)" in blocks
    assert ":large_green_circle:" in blocks
    assert "tool failure rate 31% → 0% (better)" in blocks
    replies = [reply["text"] for reply in message["replies"]]
    assert any("Verified disable-tool" in text and "recovered" in text for text in replies)
