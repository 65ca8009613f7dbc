"""Stale buttons: a click carrying another version than the message's current one does nothing.

Every button's value carries the version of what it acts on (``bot/slack/ids.py``); the
listener recomputes it from the stored incident and, when they differ, answers ephemerally
"this message changed; here is the current one" with the current card, acting on nothing.
Signed requests through real Bolt, against the Slack emulator, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.config import BallastConfig
from bot.slack.listeners import CHANGED
from bot.slack.outbox import SlackOutbox
from tests.slack_emulator import SlackEmulator
from tests.slack_emulator.payloads import click
from tests.slack_emulator.signing import RequestSigner
from tests.slack_scenarios.test_incident_in_slack import (
    ALERT,
    CHANNEL,
    OWNER,
    RUNBOOKS,
    SECRET,
    STRANGER,
    incident_message,
    post_signed,
    settle,
    wait_for,
)

MADE_UP_VERSION = "0123456789abcdef"


@pytest.fixture(scope="module")
def slack() -> Iterator[SlackEmulator]:
    with SlackEmulator(users=(OWNER, STRANGER), time_scale=60) as emulator:
        yield emulator


@pytest.fixture
def runbooks_dir() -> Path:
    return RUNBOOKS


async def fresh_harness(make_harness: Any, slack: SlackEmulator) -> Any:
    """Ballast with Slack on the emulator (reset), nothing received yet."""
    slack.reset()
    return await make_harness(
        config=BallastConfig.model_validate({"teams": {"@oncall": ["U0OWNER2"]}}),
        slack_bot_token="xoxb-ballast-test",
        slack_signing_secret=SECRET,
        slack_api_url=slack.base_url,
        slack_channel=CHANNEL.id,
    )


@pytest.fixture
async def h(make_harness: Any, slack: SlackEmulator) -> Any:
    harness = await fresh_harness(make_harness, slack)
    await harness.client.post("/webhooks/generic", json={"alerts": [ALERT]})
    await settle(harness)
    return harness


def with_version(payload: dict[str, Any], version: str) -> dict[str, Any]:
    """The same click, its button value carrying ``version`` (still a well-formed value)."""
    value = json.loads(payload["actions"][0]["value"])
    value["version"] = version
    payload["actions"][0]["value"] = json.dumps(value, separators=(",", ":"))
    return payload


async def incident(h: Any) -> dict[str, Any]:
    body: dict[str, Any] = (await h.client.get("/api/v1/incidents/1")).json()
    return body


async def answer(slack: SlackEmulator, url: str) -> dict[str, Any]:
    async def posted() -> list[Any]:
        return slack.response_posts(url)

    [post] = await wait_for(posted, "the ephemeral answer")
    return dict(post.body)


def assert_changed_answer(body: dict[str, Any]) -> None:
    assert body["response_type"] == "ephemeral"
    assert body["replace_original"] is False
    assert body["text"] == CHANGED
    blocks = str(body["blocks"])
    assert "here is the current one" in blocks
    assert "search failing on svc-a" in blocks  # the current card follows the notice


@pytest.mark.parametrize(
    "action_id",
    [
        "ballast.run:supervised",
        "ballast.skip:supervised",
        "ballast.undo:disable-tool",
        "ballast.resolve",
    ],
)
async def test_made_up_version_acts_on_nothing(
    h: Any, slack: SlackEmulator, action_id: str
) -> None:
    before = await incident(h)
    url = slack.response_url("actions")
    payload = click(
        incident_message(slack), action_id, user=OWNER, channel=CHANNEL, response_url=url
    )
    response = await post_signed(
        h, RequestSigner(SECRET).interaction(with_version(payload, MADE_UP_VERSION))
    )
    assert response.status_code == 200
    assert_changed_answer(await answer(slack, url))
    after = await incident(h)
    assert after["status"] == before["status"] != "resolved"
    assert after["timeline"] == before["timeline"]
    assert after["mitigations"] == before["mitigations"]
    assert await h.services.controls.read("svc-a.autonomy") is None
    assert await h.services.controls.read("svc-a.tools.search.enabled") is False


async def test_the_real_version_acts(h: Any, slack: SlackEmulator) -> None:
    """The control: the same click with the version the message carries does act."""
    url = slack.response_url("actions")
    payload = click(
        incident_message(slack), "ballast.resolve", user=OWNER, channel=CHANNEL, response_url=url
    )
    assert (await post_signed(h, RequestSigner(SECRET).interaction(payload))).status_code == 200
    body = await answer(slack, url)
    assert body["text"] == "#1 resolved."
    assert (await incident(h))["status"] == "resolved"


async def test_a_button_on_an_outdated_message_is_stale(h: Any, slack: SlackEmulator) -> None:
    """Run since the message was drawn: its Run button no longer acts, nor does Skip."""
    old = incident_message(slack)
    signer = RequestSigner(SECRET)
    run = click(
        old,
        "ballast.run:supervised",
        user=OWNER,
        channel=CHANNEL,
        response_url=slack.response_url("actions"),
    )
    await post_signed(h, signer.interaction(run))

    async def applied() -> bool:
        mitigations = (await incident(h))["mitigations"]
        return any(m["id"] == "supervised" and m["state"] == "applied" for m in mitigations)

    await wait_for(applied, "the run")
    before = await incident(h)
    for action_id in ("ballast.run:supervised", "ballast.skip:supervised"):
        url = slack.response_url("actions")
        again = click(old, action_id, user=OWNER, channel=CHANNEL, response_url=url)
        await post_signed(h, signer.interaction(again))
        body = await answer(slack, url)
        assert_changed_answer(body)
        assert "ballast.undo:supervised" in str(body["blocks"])  # the current card
    assert (await incident(h))["timeline"] == before["timeline"]


async def test_a_late_opened_announcement_does_not_overwrite_a_newer_one(
    make_harness: Any, slack: SlackEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The engine's "opened" announcement enqueues the message's post; the auto mitigation's
    record, right after the engine's commit, announces again. Held back here inside the
    post's transaction, the "opened" one must not make the newer announcement find no message
    to update (on PostgreSQL it did: its post then lost to the uncommitted one) and the
    message keep the old state, every button on it stale."""
    h = await fresh_harness(make_harness, slack)
    post = SlackOutbox.post_incident_message
    held_back: list[int] = []

    async def slow_first(self: SlackOutbox, session: Any, incident_id: int, *args: Any) -> Any:
        enqueued = await post(self, session, incident_id, *args)
        if not held_back:
            held_back.append(incident_id)
            await asyncio.sleep(0.3)  # the auto mitigation's record announces meanwhile
        return enqueued

    monkeypatch.setattr(SlackOutbox, "post_incident_message", slow_first)
    await h.client.post("/webhooks/generic", json={"alerts": [ALERT]})
    await settle(h)
    assert held_back == [1]
    assert (await incident(h))["status"] == "mitigating"

    url = slack.response_url("actions")
    payload = click(
        incident_message(slack), "ballast.resolve", user=OWNER, channel=CHANNEL, response_url=url
    )
    assert (await post_signed(h, RequestSigner(SECRET).interaction(payload))).status_code == 200
    body = await answer(slack, url)
    assert body.get("text") != CHANGED, body
