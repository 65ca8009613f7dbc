"""Hostile alert labels through every Slack path: no live mention, no disguised link.

Issue 14's probe: ``locale="<!channel> <!everyone>"`` and ``intent="<@U05KQ7J2M1P>
<https://evil.example/login|click to re-auth>"`` on a runbook that puts labels in its title,
dashboard URL, ``notify`` text and escalation, then the incident card, thread notes, the
``notify`` action, escalation, the reminder, a slash-command answer and the postmortem posted
to the thread all go through the Slack emulator. Every ``<…>`` Slack would parse must be one
Ballast built from its own ids (owner, user group, clicking user) or a date.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.config import BallastConfig
from tests.principals import BRIDGE
from tests.slack_emulator import SlackEmulator
from tests.slack_emulator.payloads import SlackChannel, SlackUser, slash_command_form
from tests.slack_emulator.server import DEFAULT_CHANNEL
from tests.slack_emulator.signing import RequestSigner

RUNBOOKS = Path(__file__).resolve().parent / "runbooks"
SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
OWNER = SlackUser("U0OWNER1", "owner")
SUPPORT_OPS = SlackChannel("C0SUPPORTOPS", "support-ops")
INC_CHANNEL = SlackChannel("C0INCSUPPORT", "inc-support-assistant")
LOCALE = "<!channel> <!everyone>"
INTENT = "<@U05KQ7J2M1P> <https://evil.example/login|click to re-auth>"
ALERT = {
    "labels": {
        "alertname": "UserCorrectionRateHigh",
        "service": "support-assistant",
        "locale": LOCALE,
        "intent": INTENT,
    },
    "annotations": {"summary": "<!here> 9.4% corrected <https://evil.example|details>"},
    "starts_at": "2026-11-27T02:00:00Z",
}
TOKEN = BRIDGE.headers  # may name the acting person in the body

# The markup Ballast itself writes: mentions of ids it holds, dates, its runbook's dashboard.
_OURS = re.compile(
    r"<@U0OWNER1>"
    r"|<!subteam\^S0SUPPORT1\|@support-ai-oncall>"
    r"|<!date\^\d+\^[^<>]*>"
    r"|<https://grafana\.example\.com/[^<>|]*\|Corrections>"
)
_MARKUP = re.compile(r"<[^<>]*>")


@pytest.fixture(scope="module")
def slack() -> Iterator[SlackEmulator]:
    channels = (DEFAULT_CHANNEL, SUPPORT_OPS, INC_CHANNEL)
    with SlackEmulator(users=(OWNER,), channels=channels, time_scale=60) as emulator:
        yield emulator


@pytest.fixture
def runbooks_dir() -> Path:
    return RUNBOOKS


@pytest.fixture
async def h(make_harness: Any, slack: SlackEmulator) -> Any:
    slack.reset()
    config = {
        "slack": {"usergroup_ids": {"@support-ai-oncall": "S0SUPPORT1"}},
        "teams": {"@support-ai-oncall": [OWNER.id]},
    }
    return await make_harness(
        config=BallastConfig.model_validate(config),
        slack_bot_token="xoxb-ballast-test",
        slack_signing_secret=SECRET,
        slack_api_url=slack.base_url,
        slack_channel=DEFAULT_CHANNEL.id,
        api_token="api-token-1",
    )


async def settle(h: Any) -> None:
    for _ in range(3):
        await h.settle()
        await h.services.timers.tick()
        h.services.clock.advance(seconds=16)
        if h.services.postmortems is not None:
            await h.services.postmortems.drain()
        await h.services.delivery.drain()
        await asyncio.sleep(0.05)


def strings(value: Any) -> Iterator[str]:
    """Every string in a call's arguments (text, blocks, fields, fallbacks) Slack parses.

    ``plain_text`` objects (the header, button labels) are shown as written, never parsed.
    """
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict) and value.get("type") == "plain_text":
        return
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from strings(item)


def foreign_markup(text: str) -> list[str]:
    """``<…>`` tokens Slack would parse that Ballast did not build itself."""
    return [token for token in _MARKUP.findall(text) if not _OURS.fullmatch(token)]


def sent_texts(slack: SlackEmulator) -> list[tuple[str, str | None, str]]:
    """(method, channel, string) for every string Ballast sent to Slack."""
    out = []
    for call in slack.calls():
        if call.method.startswith("chat."):
            out += [(call.method, call.channel, s) for s in strings(dict(call.args))]
    for post in slack.response_posts():
        out += [("response_url", None, s) for s in strings(dict(post.body))]
    return out


def test_the_markup_check_finds_what_the_issue_saw() -> None:
    """The check itself: the raw labels are foreign markup, their escaped forms are not."""
    assert foreign_markup(f"{LOCALE} {INTENT}") == [
        "<!channel>",
        "<!everyone>",
        "<@U05KQ7J2M1P>",
        "<https://evil.example/login|click to re-auth>",
    ]
    assert foreign_markup("&lt;!channel&gt; <@U0OWNER1> <!date^1^{time}|x>") == []


async def test_hostile_labels_reach_no_slack_path_live(h: Any, slack: SlackEmulator) -> None:
    assert (await h.client.post("/webhooks/generic", json={"alerts": [ALERT]})).is_success
    await settle(h)
    h.services.clock.advance(minutes=31)  # escalation (5m) and the reminder (30m) are due
    await settle(h)
    url = slack.response_url("commands")
    form = slash_command_form("/ballast", "list", user=OWNER, channel=DEFAULT_CHANNEL)
    form["response_url"] = url
    signed = RequestSigner(SECRET).slash_command(form)
    answer = await h.client.post("/slack/events", content=signed.body, headers=signed.headers)
    assert answer.status_code == 200
    for _ in range(100):
        if slack.response_posts(url):
            break
        await asyncio.sleep(0.05)
    resolved = await h.client.post(
        "/api/v1/incidents/1/resolve", json={"actor": OWNER.id}, headers=TOKEN
    )
    assert resolved.is_success, resolved.text
    await settle(h)

    texts = sent_texts(slack)
    joined = "\n".join(text for _, _, text in texts)
    # Every path was taken, and carried the labels (escaped) where it shows them.
    [card] = [m for m in slack.messages(DEFAULT_CHANNEL.id) if m.get("blocks")]
    assert "&lt;!channel&gt;" in card["text"]
    notified = [m for m in slack.messages(DEFAULT_CHANNEL.id) if not m.get("blocks")]
    assert any("&lt;!channel&gt;" in m["text"] for m in notified)  # notify to @support-ai-oncall
    thread = "\n".join(str(reply) for reply in card.get("replies", []))
    assert "Reminder: #1" in thread, "the reminder did not reach the thread"
    assert "postmortem draft" in thread
    assert "&lt;!everyone&gt;" in thread
    assert "Resolved by <@U0OWNER1>" in thread
    [ops] = slack.messages(SUPPORT_OPS.id)
    assert "&lt;@U05KQ7J2M1P&gt;" in ops["text"]
    [escalation] = slack.messages(INC_CHANNEL.id)
    assert "&lt;!everyone&gt;" in escalation["text"]
    assert any(method == "response_url" and "&lt;!channel&gt;" in t for method, _, t in texts)
    assert "<!subteam^S0SUPPORT1|@support-ai-oncall>" in joined  # our own mentions still work

    live = sorted({(m, c, token) for m, c, text in texts for token in foreign_markup(text)})
    assert live == [], f"hostile markup reached Slack live: {live}"
