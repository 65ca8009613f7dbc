"""Acknowledge, resolve and escalate in Slack need a responder; refusals are ephemeral and
journaled.

A responder is an owner of the incident's runbook, a member of a ``slack.responder_groups``
user group (resolved with ``usergroups.users.list`` on the emulator, cached), or a user in
``slack.responders``. Signed requests through real Bolt, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.config import BallastConfig
from tests.slack_emulator import SlackEmulator
from tests.slack_emulator.payloads import SlackUser, click, slash_command_form
from tests.slack_emulator.signing import RequestSigner
from tests.slack_scenarios.test_incident_in_slack import (
    ALERT,
    CHANNEL,
    OWNER,
    RUNBOOKS,
    SECRET,
    STRANGER,
    post_signed,
    settle,
    wait_for,
)

GROUPIE = SlackUser("U0GROUPIE", "groupie")
LISTED = SlackUser("U0LISTED", "listed")
BOT_TOKEN = "xoxb-ballast-test-responders"
CONFIG = {
    "teams": {"@oncall": ["U0OWNER2"]},
    "slack": {
        "usergroup_ids": {"@incident-responders": "S0RESPOND"},
        "responder_groups": ["@incident-responders"],
        "responders": [LISTED.id],
    },
}


@pytest.fixture(scope="module")
def slack() -> Iterator[SlackEmulator]:
    users = (OWNER, STRANGER, GROUPIE, LISTED)
    with SlackEmulator(users=users, time_scale=60) as emulator:
        yield emulator


@pytest.fixture
def runbooks_dir() -> Path:
    return RUNBOOKS


@pytest.fixture
async def h(make_harness: Any, slack: SlackEmulator) -> Any:
    slack.reset()
    slack.set_usergroup("S0RESPOND", [GROUPIE.id])
    harness = await make_harness(
        config=BallastConfig.model_validate(CONFIG),
        slack_bot_token=BOT_TOKEN,
        slack_signing_secret=SECRET,
        slack_api_url=slack.base_url,
        slack_channel=CHANNEL.id,
    )
    await harness.client.post("/webhooks/generic", json={"alerts": [ALERT]})
    await settle(harness)
    return harness


async def incident(h: Any) -> dict[str, Any]:
    body: dict[str, Any] = (await h.client.get("/api/v1/incidents/1")).json()
    return body


async def command(h: Any, slack: SlackEmulator, user: SlackUser, text: str) -> dict[str, Any]:
    url = slack.response_url("commands")
    form = slash_command_form("/ballast", text, user=user, channel=CHANNEL, response_url=url)
    assert (await post_signed(h, RequestSigner(SECRET).slash_command(form))).status_code == 200
    return await _answer(slack, url)


async def button(h: Any, slack: SlackEmulator, user: SlackUser, action_id: str) -> dict[str, Any]:
    url = slack.response_url("actions")
    payload = click(
        slack.messages(CHANNEL.id)[0], action_id, user=user, channel=CHANNEL, response_url=url
    )
    assert (await post_signed(h, RequestSigner(SECRET).interaction(payload))).status_code == 200
    return await _answer(slack, url)


async def _answer(slack: SlackEmulator, url: str) -> dict[str, Any]:
    async def posted() -> list[Any]:
        return slack.response_posts(url)

    [post] = await wait_for(posted, "the ephemeral answer")
    return dict(post.body)


def kinds(body: dict[str, Any]) -> list[str]:
    return [entry["kind"] for entry in body["timeline"]]


@pytest.mark.parametrize(
    ("how", "text", "what"),
    [
        ("command", "escalate 1", "escalate"),
        ("command", "ack 1", "acknowledge"),
        ("command", "resolve 1 bored", "resolve"),
        ("button", "ballast.resolve", "resolve"),
        ("button", "ballast.skip:supervised", "skip a mitigation of"),
    ],
)
async def test_other_member_is_refused_ephemerally_and_journaled(
    h: Any, slack: SlackEmulator, how: str, text: str, what: str
) -> None:
    before = await incident(h)
    if how == "command":
        answer = await command(h, slack, STRANGER, text)
    else:
        answer = await button(h, slack, STRANGER, text)
    assert answer["response_type"] == "ephemeral"
    assert answer["replace_original"] is False
    assert answer["text"].startswith(f":no_entry: <@{STRANGER.id}> may not {what} #1")
    assert "<!subteam^S0RESPOND|@incident-responders>" in answer["text"]
    after = await incident(h)
    assert after["status"] == before["status"]
    new = after["timeline"][len(before["timeline"]) :]
    assert [entry["kind"] for entry in new] == ["refused"]
    [entry] = new
    assert entry["actor"] == STRANGER.id
    assert entry["details"] == {
        "action": what,
        "via": "slack",
        "reason": "not a responder",
        "auth": {"principal": f"slack:{STRANGER.id}", "method": "slack", "person": STRANGER.id},
    }
    for secret in (SECRET, BOT_TOKEN, "xoxb-"):
        assert secret not in str(after["timeline"])
    assert "escalated" not in kinds(after)


@pytest.mark.parametrize("user", [OWNER, GROUPIE, LISTED], ids=lambda u: u.name)
async def test_responders_may_escalate_and_resolve(
    h: Any, slack: SlackEmulator, user: SlackUser
) -> None:
    answer = await command(h, slack, user, "escalate 1")
    assert answer["text"].startswith("#1 escalation step 1"), answer["text"]
    answer = await button(h, slack, user, "ballast.resolve")
    assert answer["text"] == "#1 resolved."
    body = await incident(h)
    assert body["status"] == "resolved"
    assert "refused" not in kinds(body)
    assert slack.count("usergroups.users.list") <= 1  # cached, and only asked when needed


async def test_responder_group_members_are_cached(h: Any, slack: SlackEmulator) -> None:
    for text in ("ack 1", "escalate 1", "ack 1"):
        await command(h, slack, GROUPIE, text)
    assert slack.count("usergroups.users.list") == 1


def test_a_responder_group_handle_must_resolve() -> None:
    with pytest.raises(ValueError, match="@nobody-knows"):
        BallastConfig.model_validate({"slack": {"responder_groups": ["@nobody-knows"]}})
    with pytest.raises(ValueError, match="responders"):
        BallastConfig.model_validate({"slack": {"responders": ["not-a-user-id"]}})
    by_id = BallastConfig.model_validate({"slack": {"responder_groups": ["S0ABC"]}})
    assert by_id.slack.responder_groups == ["S0ABC"]
