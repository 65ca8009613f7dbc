"""Release gate approvals in Slack: a check blocked for want of approvals posts one request to
the service's channel (through the outbox) with an Approve button; owners' clicks (signed,
through real Bolt) and ``ballast gate approve`` count once per person and update the message;
a non-owner is refused ephemerally and journaled; a stale click does nothing. Against the
Slack emulator, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.changelog.kinds import ChangeKind
from bot.config import BallastConfig
from bot.gates.check import GateRequest
from bot.slack.gate_requests import render_gate_request
from bot.slack.ids import ButtonValueError, GateButtonValue
from bot.slack.listeners import CHANGED
from tests.gates.test_gates import APPROVE, CHECK, RUNBOOK
from tests.slack_emulator import SlackEmulator
from tests.slack_emulator.payloads import SlackUser, click
from tests.slack_emulator.signing import RequestSigner
from tests.slack_scenarios.test_incident_in_slack import (
    CHANNEL,
    OWNER,
    SECRET,
    post_signed,
    settle,
    wait_for,
)

OWNER2 = SlackUser("U0OWNER2", "owner2")
STRANGER = SlackUser("U0STRANGE", "stranger")
RELEASE = {"service": "rag", "kind": "model", "version": "gpt-<b>&5"}
CONFIG = {
    "gates": {"rag": {"model": {"approvals": 2, "owners": ["U0OWNER1", "@oncall"]}}},
    "teams": {"@oncall": ["U0OWNER2"]},
}


@pytest.fixture(scope="module")
def slack() -> Iterator[SlackEmulator]:
    with SlackEmulator(users=(OWNER, OWNER2, STRANGER), time_scale=60) as emulator:
        yield emulator


@pytest.fixture
def runbooks_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "runbooks"
    folder.mkdir()
    (folder / "rag.yaml").write_text(RUNBOOK)
    return folder


@pytest.fixture
async def h(make_harness: Any, slack: SlackEmulator) -> Any:
    slack.reset()
    return await make_harness(
        config=BallastConfig.model_validate(CONFIG),
        slack_bot_token="xoxb-ballast-test",
        slack_signing_secret=SECRET,
        slack_api_url=slack.base_url,
        slack_channel=CHANNEL.id,
    )


def request_message(slack: SlackEmulator) -> dict[str, Any]:
    [message] = [m for m in slack.messages(CHANNEL.id) if "Release gate" in str(m["text"])]
    return message


def shown(message: dict[str, Any]) -> str:
    return str(message["blocks"][0]["text"]["text"])


async def clicked(h: Any, slack: SlackEmulator, message: dict[str, Any], user: SlackUser) -> str:
    url = slack.response_url("actions")
    payload = click(message, "ballast.gate_approve", user=user, channel=CHANNEL, response_url=url)
    response = await post_signed(h, RequestSigner(SECRET).interaction(payload))
    assert response.status_code == 200

    async def answered() -> list[Any]:
        return slack.response_posts(url)

    [post] = await wait_for(answered, "the answer to the click")
    assert post.body["response_type"] == "ephemeral"
    return str(post.body)


async def check(h: Any) -> dict[str, Any]:
    answer = await h.as_("automation").post(CHECK, json=RELEASE)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def test_owners_approve_from_the_request_message(h: Any, slack: SlackEmulator) -> None:
    blocked = await check(h)
    assert not blocked["passed"]
    assert blocked["reasons"][0].startswith("needs 2 approval(s) from owners of rag")
    await check(h)  # asked again: still one message
    await settle(h)
    first = request_message(slack)
    assert "Approvals 0 of 2" in shown(first)
    assert "`gpt-&lt;b&gt;&amp;5`" in shown(first)  # the version is escaped
    assert "<@U0OWNER1>" in shown(first)

    answer = await clicked(h, slack, first, OWNER)
    assert "approvals 1 of 2" in answer
    await settle(h)
    updated = request_message(slack)
    assert "Approvals 1 of 2: <@U0OWNER1>" in shown(updated)

    # The same person again, on the updated message: counted once.
    assert "approvals 1 of 2" in await clicked(h, slack, updated, OWNER)
    # A click drawn before the first approval is stale: nothing done, the current card shown.
    stale = await clicked(h, slack, first, OWNER2)
    assert CHANGED in stale
    assert "Approvals 1 of 2" in stale
    # A stranger is refused, and the refusal is on the record (the change log's gate lines).
    refused = await clicked(h, slack, updated, STRANGER)
    assert ":no_entry: U0STRANGE is not an owner of rag" in refused
    lines = (await h.as_("reader").get("/api/v1/changes", params={"service": "rag"})).json()
    assert any(
        c["by"] == "U0STRANGE" and c["note"].startswith("approval refused")
        for c in lines["changes"]
    )
    assert not (await check(h))["passed"]

    # The second owner approves with the CLI's endpoint: the message follows.
    approved = await h.as_("owner2").post(APPROVE, json=RELEASE)
    assert approved.json()["approvals"] == ["U0OWNER1", "U0OWNER2"]
    await settle(h)
    done = request_message(slack)
    assert "Approvals 2 of 2: <@U0OWNER1> <@U0OWNER2>" in shown(done)
    assert "Enough owners approved" in shown(done)
    assert len(done["blocks"]) == 1  # no Approve button any more
    assert (await check(h))["passed"]
    assert len([m for m in slack.messages(CHANNEL.id) if "Release gate" in str(m["text"])]) == 1


def test_gate_button_values_are_checked() -> None:
    request = GateRequest("rag", ChangeKind.MODEL, "m-2", 2, [], ["U0OWNER1"])
    message = render_gate_request(request)
    raw = message.blocks[1]["elements"][0]["value"]
    assert GateButtonValue.decode(raw).release == "m-2"
    forged = json.loads(raw) | {"action": "ballast.run"}
    with pytest.raises(ButtonValueError, match="not a gate approval"):
        GateButtonValue.decode(json.dumps(forged))
    with pytest.raises(ButtonValueError, match="not one Ballast made"):
        GateButtonValue.decode(json.dumps(json.loads(raw) | {"version": "zz"}))
