"""The emulator itself, driven by the real slack_sdk AsyncWebClient and slack_bolt AsyncApp."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from tests.slack_emulator import (
    DEFAULT_CHANNEL,
    Limit,
    RequestSigner,
    SlackChannel,
    SlackEmulator,
    SlackUser,
    app_mention_event,
    click,
    event_callback,
    slash_command_form,
    url_verification,
)

ALICE = SlackUser("U0ALICE001", "alice", "Alice Owner")
BOB = SlackUser("U0BOB00001", "bob", "Bob Bystander")
OWNERS = "S0OWNERS01"
SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
TOKEN = "xoxb-test-token"


@pytest.fixture(scope="module")
def running() -> Iterator[SlackEmulator]:
    with SlackEmulator(users=[ALICE, BOB], usergroups={OWNERS: [ALICE.id]}) as emulator:
        yield emulator


@pytest.fixture
def slack(running: SlackEmulator) -> SlackEmulator:
    running.reset()
    return running


def client_for(slack: SlackEmulator, token: str = TOKEN) -> AsyncWebClient:
    return AsyncWebClient(token=token, base_url=slack.base_url)


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def button(action_id: str, text: str = "Run", value: str = "v") -> dict[str, Any]:
    return {
        "type": "button",
        "action_id": action_id,
        "text": {"type": "plain_text", "text": text},
        "value": value,
    }


async def slack_error(call: Awaitable[Any]) -> SlackApiError:
    with pytest.raises(SlackApiError) as caught:
        await call
    return caught.value


# -- messages ---------------------------------------------------------------------------------


async def test_post_update_and_thread_as_slack_answers(slack: SlackEmulator) -> None:
    client = client_for(slack)
    posted = await client.chat_postMessage(channel="incidents", text="t", blocks=[section("v1")])
    assert posted["channel"] == DEFAULT_CHANNEL.id
    assert posted["message"]["ts"] == posted["ts"]
    assert posted["message"]["bot_id"] == slack.team.bot_id
    reply = await client.chat_postMessage(
        channel=posted["channel"], thread_ts=posted["ts"], text="r"
    )
    updated = await client.chat_update(channel=posted["channel"], ts=posted["ts"], text="t2")

    assert (updated["ts"], updated["text"]) == (posted["ts"], "t2")
    (message,) = slack.messages(DEFAULT_CHANNEL.id)
    assert (message["text"], message["edits"]) == ("t2", 1)
    assert message["blocks"][0]["text"]["text"] == "v1"  # omitted blocks are retained
    assert [r["ts"] for r in message["replies"]] == [reply["ts"]]
    assert slack.messages("incidents", thread_ts=posted["ts"])[0]["text"] == "r"
    assert slack.count("chat.postMessage", channel=DEFAULT_CHANNEL.id) == 2
    assert slack.calls("chat.update")[0].args["ts"] == posted["ts"]


async def test_form_and_json_bodies_and_token_rules(slack: SlackEmulator) -> None:
    async with httpx.AsyncClient(base_url=slack.base_url) as http:
        form = await http.post(
            "chat.postMessage",
            data={
                "token": TOKEN,
                "channel": "incidents",
                "text": "f",
                "blocks": json.dumps([section("b")]),
            },
        )
        in_json = await http.post(
            "chat.postMessage", json={"token": TOKEN, "channel": "incidents", "text": "j"}
        )
        header = await http.post("auth.test", headers={"Authorization": "Bearer xoxp-user"})
        missing = await http.post("auth.test")

    assert form.json()["ok"] is True
    assert slack.calls("chat.postMessage")[0].args["blocks"][0]["text"]["text"] == "b"
    assert in_json.json() == {"ok": False, "error": "not_authed"}  # JSON needs the header
    assert header.json() == {"ok": False, "error": "invalid_auth"}
    assert missing.status_code == 200
    assert missing.json()["error"] == "not_authed"


async def test_errors_are_slacks_documented_ones(slack: SlackEmulator) -> None:
    client = client_for(slack)
    bobs = slack.post_as(BOB.id, "incidents", "written by Bob")
    created = await client.conversations_create(name="inc-42")
    channel_id = created["channel"]["id"]

    cases: list[tuple[Callable[[], Awaitable[Any]], str]] = [
        (lambda: client.chat_postMessage(channel="C0NOWHERE1", text="x"), "channel_not_found"),
        (lambda: client.api_call("chat.postMessage", json={"channel": "incidents"}), "no_text"),
        (lambda: client.chat_update(channel="incidents", ts="1.1", text="x"), "message_not_found"),
        (lambda: client.chat_update(channel="incidents", ts=bobs, text="x"), "cant_update_message"),
        (lambda: client.conversations_create(name="inc-42"), "name_taken"),
        (lambda: client.conversations_create(name="Inc 42"), "invalid_name_specials"),
        (lambda: client.users_info(user="U0NOBODY01"), "user_not_found"),
        (lambda: client.usergroups_users_list(usergroup="S0NOGROUP1"), "no_such_subteam"),
        (
            lambda: client.chat_postEphemeral(channel=channel_id, user=BOB.id, text="x"),
            "user_not_in_channel",
        ),
        (lambda: client.api_call("chat.delete", json={"channel": "incidents"}), "unknown_method"),
    ]
    for call, error in cases:
        assert (await slack_error(call())).response["error"] == error
    assert slack.count(ok=False) == len(cases)


async def test_directory_channels_and_ephemerals(slack: SlackEmulator) -> None:
    client = client_for(slack)
    assert (await client.usergroups_users_list(usergroup=OWNERS))["users"] == [ALICE.id]
    assert (await client.users_info(user=ALICE.id))["user"]["real_name"] == "Alice Owner"
    created = await client.conversations_create(name="inc-7")
    channel_id = created["channel"]["id"]
    await client.conversations_invite(channel=channel_id, users=[ALICE.id])
    again = await slack_error(client.conversations_invite(channel=channel_id, users=ALICE.id))
    sent = await client.chat_postEphemeral(channel=channel_id, user=ALICE.id, text="not you")

    assert again.response["error"] == "already_in_channel"
    assert slack.channel("inc-7")["members"] == sorted([slack.team.bot_user_id, ALICE.id])
    assert slack.ephemerals(user=ALICE.id)[0]["message_ts"] == sent["message_ts"]


async def test_file_upload_v2_round_trip(slack: SlackEmulator) -> None:
    client = client_for(slack)
    done = await client.files_upload_v2(
        channel=DEFAULT_CHANNEL.id, content="timeline", filename="t.md", title="Timeline"
    )
    assert done["files"][0]["title"] == "Timeline"
    assert slack.uploads()[0]["data"] == b"timeline"
    assert slack.messages("incidents")[0]["files"][0]["size"] == len("timeline")
    url = await client.files_getUploadURLExternal(filename="x.md", length=3)
    never_uploaded = client.files_completeUploadExternal(files=[{"id": url["file_id"]}])
    assert (await slack_error(never_uploaded)).response["error"] == "file_not_found"


# -- rate limits ------------------------------------------------------------------------------


async def test_post_message_is_limited_per_channel_thread_replies_included(
    slack: SlackEmulator,
) -> None:
    client = client_for(slack)
    slack.add_channel(SlackChannel("C0OTHER001", "other"))
    parent = await client.chat_postMessage(channel="incidents", text="parent")
    for n in range(2):
        await client.chat_postMessage(channel="incidents", thread_ts=parent["ts"], text=f"{n}")
    limited = await slack_error(client.chat_postMessage(channel="incidents", text="4th"))
    await client.chat_postMessage(channel="other", text="another channel has its own budget")
    hasty = await slack_error(client.chat_postMessage(channel="incidents", text="4th"))

    assert limited.response.status_code == 429
    assert limited.response.data == {"ok": False, "error": "ratelimited"}
    assert limited.response.headers["Retry-After"] == "1"
    assert hasty.response.status_code == 429  # retried before Retry-After: refused again
    first, second = slack.rate_limited("chat.postMessage", channel="incidents")
    assert 0 < (first.retry_after or 0) <= 1
    assert slack.premature_retries() == [(first, second)]
    assert slack.unretried_rate_limits() == [first, second]


async def test_slack_sdk_retry_handler_honours_retry_after(slack: SlackEmulator) -> None:
    client = client_for(slack)
    client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=1))
    for n in range(4):
        await client.chat_postMessage(channel="incidents", text=f"m{n}")

    assert slack.count("chat.postMessage", ok=True) == 4
    assert len(slack.rate_limited()) == 1
    assert slack.unretried_rate_limits() == []
    assert slack.premature_retries() == []


async def test_tier_limits_workspace_wide() -> None:
    with SlackEmulator() as slack:
        client = client_for(slack)
        posted = await client.chat_postMessage(channel="incidents", text="x")
        for n in range(50):
            await client.chat_update(channel="incidents", ts=posted["ts"], text=f"{n}")
        update = await slack_error(
            client.chat_update(channel="incidents", ts=posted["ts"], text="!")
        )
        for n in range(20):
            await client.conversations_create(name=f"inc-{n}")
        create = await slack_error(client.conversations_create(name="inc-20"))

    assert update.response.status_code == create.response.status_code == 429
    assert 50 < int(update.response.headers["Retry-After"]) <= 60
    assert slack.count("chat.update", ok=True) == 50
    unretried = [c.method for c in slack.unretried_rate_limits()]
    assert unretried == ["chat.update", "conversations.create"]


async def test_time_scale_shrinks_windows_and_limits_are_configurable() -> None:
    limits = {"usergroups.users.list": Limit(2, 60.0), "users.info": None}
    with SlackEmulator(
        users=[ALICE], usergroups={OWNERS: []}, limits=limits, time_scale=600
    ) as slack:
        client = client_for(slack)
        for _ in range(2):
            await client.usergroups_users_list(usergroup=OWNERS)
        limited = await slack_error(client.usergroups_users_list(usergroup=OWNERS))
        time.sleep(0.11)  # 60 s / 600
        await client.usergroups_users_list(usergroup=OWNERS)
        for _ in range(150):  # None: no limit at all
            await client.users_info(user=ALICE.id)

    assert limited.response.status_code == 429
    assert slack.unretried_rate_limits() == []  # the same request later succeeded


async def test_retry_matching_by_target_for_coalescing_clients() -> None:
    with SlackEmulator(limits={"chat.update": Limit(1, 60.0)}, time_scale=600) as slack:
        client = client_for(slack)
        posted = await client.chat_postMessage(channel="incidents", text="v0")
        await client.chat_update(channel="incidents", ts=posted["ts"], text="v1")
        await slack_error(client.chat_update(channel="incidents", ts=posted["ts"], text="v2"))
        time.sleep(0.11)
        await client.chat_update(channel="incidents", ts=posted["ts"], text="v3")

    assert len(slack.unretried_rate_limits()) == 1  # v2 itself was never sent again
    assert slack.unretried_rate_limits(match="target") == []
    assert slack.message("incidents", posted["ts"])["text"] == "v3"


async def test_injected_failures_change_nothing(slack: SlackEmulator) -> None:
    client = client_for(slack)
    slack.fail_next("chat.postMessage", "ratelimited", status=429, retry_after=30)
    injected = await slack_error(client.chat_postMessage(channel="incidents", text="x"))
    await client.chat_postMessage(channel="incidents", text="x")

    assert injected.response.headers["Retry-After"] == "30"
    assert len(slack.messages("incidents")) == 1
    assert slack.calls()[0].injected
    assert slack.unretried_rate_limits() == []


async def test_recover_drops_the_failures_no_call_has_met(slack: SlackEmulator) -> None:
    client = client_for(slack)
    slack.fail_next("chat.update", "internal_error", status=500, times=2)
    slack.fail_next("chat.postMessage", "internal_error", status=503)
    await slack_error(client.chat_postMessage(channel="incidents", text="x"))

    assert slack.recover() == 2
    await client.chat_postMessage(channel="incidents", text="y")
    assert [call.injected for call in slack.calls()] == [True, False]


# -- Block Kit and message limits -------------------------------------------------------------

TOO_BIG = [
    ([section("x")] * 51, "no more than 50 items allowed [json-pointer:/blocks]"),
    ([section("x" * 3001)], "must be less than 3001 characters [json-pointer:/blocks/0/text/text]"),
    (
        [{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}],
        "must be less than 151 characters [json-pointer:/blocks/0/text/text]",
    ),
    (
        [{"type": "actions", "elements": [button("a", text="b" * 76)]}],
        "must be less than 76 characters [json-pointer:/blocks/0/elements/0/text/text]",
    ),
    (
        [{"type": "actions", "elements": [button("a" * 256)]}],
        "must be less than 256 characters [json-pointer:/blocks/0/elements/0/action_id]",
    ),
    (
        [{"type": "actions", "elements": [button("a", value="v" * 2001)]}],
        "must be less than 2001 characters [json-pointer:/blocks/0/elements/0/value]",
    ),
    (
        [{"type": "actions", "elements": [button(f"a{n}") for n in range(26)]}],
        "no more than 25 items allowed [json-pointer:/blocks/0/elements]",
    ),
    (
        [{"type": "header", "text": {"type": "mrkdwn", "text": "h"}}],
        "must be one of plain_text [json-pointer:/blocks/0/text/type]",
    ),
    ([{"type": "sectoin"}], "unsupported type: sectoin [json-pointer:/blocks/0/type]"),
]


@pytest.mark.parametrize(("blocks", "error"), TOO_BIG)
async def test_invalid_blocks_name_the_limit_and_pointer(
    slack: SlackEmulator, blocks: list[dict[str, Any]], error: str
) -> None:
    refused = await slack_error(
        client_for(slack).chat_postMessage(channel="incidents", text="t", blocks=blocks)
    )
    assert refused.response["error"] == "invalid_blocks"
    assert refused.response["errors"] == [error]
    assert refused.response["response_metadata"]["messages"] == [f"[ERROR] {error}"]
    assert slack.messages("incidents") == []


async def test_blocks_at_every_limit_are_accepted(slack: SlackEmulator) -> None:
    at_limits = [
        {"type": "header", "text": {"type": "plain_text", "text": "h" * 150}},
        section("x" * 3000),
        {"type": "actions", "elements": [button("a" * 255, "b" * 75, "v" * 2000)]},
        {"type": "actions", "elements": [button(f"a{n}") for n in range(25)]},
        *([{"type": "divider"}] * 46),
    ]
    client = client_for(slack)
    await client.chat_postMessage(channel="incidents", text="t" * 40_000, blocks=at_limits)
    too_long = await slack_error(client.chat_postMessage(channel="incidents", text="t" * 40_001))
    bad_json = await slack_error(
        client.api_call(
            "chat.postMessage", data={"channel": "incidents", "text": "t", "blocks": "[{"}
        )
    )

    assert too_long.response["error"] == "msg_too_long"
    assert bad_json.response["error"] == "invalid_blocks_format"
    stored = slack.messages("incidents")[0]["blocks"]
    assert len(stored) == 50
    assert all(b["block_id"] for b in stored)  # Slack fills block_id in


# -- signed requests --------------------------------------------------------------------------


def test_signatures_round_trip_with_slack_sdk_verifier() -> None:
    signer, verifier = RequestSigner(SECRET), SignatureVerifier(SECRET)
    form = slash_command_form(
        "/ballast", "show 12", user=ALICE, channel=DEFAULT_CHANNEL, response_url="https://x/y"
    )
    command = signer.slash_command(form)

    assert verifier.is_valid_request(command.body, dict(command.headers))
    assert not verifier.is_valid_request(command.body, dict(command.with_bad_signature().headers))
    assert not verifier.is_valid_request(command.body, dict(signer.stale(command).headers))
    assert not SignatureVerifier("other").is_valid_request(command.body, dict(command.headers))
    assert list(command.form()) == [
        "token", "team_id", "team_domain", "channel_id", "channel_name", "user_id", "user_name",
        "command", "text", "api_app_id", "is_enterprise_install", "response_url", "trigger_id",
    ]  # fmt: skip
    assert command.headers["Content-Type"] == "application/x-www-form-urlencoded"


def test_event_retries_keep_the_body_and_add_retry_headers() -> None:
    signer = RequestSigner(SECRET)
    first = signer.event(
        event_callback(app_mention_event("hi", user=ALICE, channel=DEFAULT_CHANNEL))
    )
    again = signer.retry(first, num=2, reason="http_timeout")

    assert again.body == first.body
    assert again.headers["X-Slack-Retry-Num"] == "2"
    assert again.headers["X-Slack-Retry-Reason"] == "http_timeout"
    assert "X-Slack-Retry-Num" not in first.headers
    assert SignatureVerifier(SECRET).is_valid_request(again.body, dict(again.headers))
    envelope = first.payload()
    assert envelope["type"] == "event_callback"
    assert envelope["event_id"].startswith("Ev")


async def test_bolt_accepts_signed_requests_and_clicks_on_stored_buttons(
    slack: SlackEmulator,
) -> None:
    seen: dict[str, Any] = {}
    # process_before_response: dispatch returns after the listeners finished, not just acked
    app = AsyncApp(client=client_for(slack), signing_secret=SECRET, process_before_response=True)

    @app.command("/ballast")
    async def command(ack: Any, respond: Any, command: dict[str, Any]) -> None:
        await ack()
        await respond(f"you said {command['text']}")

    @app.action("run")
    async def run(ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        seen.update(user=body["user"]["id"], value=action["value"], ts=body["message"]["ts"])

    @app.event("app_mention")
    async def mention(event: dict[str, Any]) -> None:
        seen["mention"] = event["text"]

    posted = await client_for(slack).chat_postMessage(
        channel="incidents", text="t", blocks=[{"type": "actions", "elements": [button("run")]}]
    )
    stored = slack.message("incidents", posted["ts"])
    signer = RequestSigner(SECRET)
    response_url = slack.response_url()
    form = slash_command_form(
        "/ballast", "show 7", user=ALICE, channel=DEFAULT_CHANNEL, response_url=response_url
    )
    requests = [
        signer.slash_command(form),
        signer.interaction(click(stored, "run", user=ALICE, channel=DEFAULT_CHANNEL)),
        signer.event(event_callback(app_mention_event("hi", user=BOB, channel=DEFAULT_CHANNEL))),
    ]
    statuses = []
    for signed in requests:
        bolt_request = AsyncBoltRequest(body=signed.body.decode(), headers=dict(signed.headers))
        statuses.append((await app.async_dispatch(bolt_request)).status)
    challenge = signer.event(url_verification("c-123"))
    handshake = await app.async_dispatch(
        AsyncBoltRequest(body=challenge.body.decode(), headers=dict(challenge.headers))
    )
    stale = signer.stale(requests[0])
    refused = await app.async_dispatch(
        AsyncBoltRequest(body=stale.body.decode(), headers=dict(stale.headers))
    )

    assert statuses == [200, 200, 200]
    assert handshake.status == 200
    assert json.loads(handshake.body)["challenge"] == "c-123"
    assert refused.status == 401
    assert seen == {"user": ALICE.id, "value": "v", "ts": posted["ts"], "mention": seen["mention"]}
    assert seen["mention"].endswith(" hi")
    assert slack.response_posts(response_url)[0].body["text"] == "you said show 7"
    with pytest.raises(KeyError, match="has no 'undo'"):
        click(stored, "undo", user=ALICE, channel=DEFAULT_CHANNEL)


async def test_response_url_is_good_for_five_posts(slack: SlackEmulator) -> None:
    url = slack.response_url("actions")
    async with httpx.AsyncClient() as http:
        statuses = [(await http.post(url, json={"text": f"{n}"})).status_code for n in range(6)]
        unknown = await http.post(slack.root_url + "/hooks/actions/T/1/nope", json={})

    assert statuses == [200] * 5 + [404]
    assert slack.response_posts(url)[-1].status == 404
    assert unknown.json() == {"ok": False, "error": "invalid_url"}


async def test_history_and_replies_page_and_show_metadata_only_when_asked(
    slack: SlackEmulator,
) -> None:
    client = client_for(slack)
    metadata = {"event_type": "ballast_outbox", "event_payload": {"key": "k1"}}
    first = await client.chat_postMessage(channel="C0INCIDENT", text="one", metadata=metadata)
    second = await client.chat_postMessage(channel="C0INCIDENT", text="two")
    reply = await client.chat_postMessage(
        channel="C0INCIDENT", text="in thread", thread_ts=first["ts"]
    )

    history = await client.conversations_history(channel="C0INCIDENT")
    # Newest first; a thread reply is not in the channel's history.
    assert [m["text"] for m in history["messages"]] == ["two", "one"]
    assert all("metadata" not in m for m in history["messages"])
    shown = await client.conversations_history(channel="C0INCIDENT", include_all_metadata=True)
    assert shown["messages"][1]["metadata"] == metadata

    # oldest excludes its own ts unless inclusive; paging hands out an opaque cursor.
    after = await client.conversations_history(channel="C0INCIDENT", oldest=first["ts"])
    assert [m["ts"] for m in after["messages"]] == [second["ts"]]
    both = await client.conversations_history(
        channel="C0INCIDENT", oldest=first["ts"], inclusive=True
    )
    assert len(both["messages"]) == 2
    page = await client.conversations_history(channel="C0INCIDENT", limit=1)
    assert page["has_more"] is True
    cursor = page["response_metadata"]["next_cursor"]
    rest = await client.conversations_history(channel="C0INCIDENT", limit=1, cursor=cursor)
    assert [m["text"] for m in rest["messages"]] == ["one"]
    assert rest["has_more"] is False
    assert rest["response_metadata"]["next_cursor"] == ""

    replies = await client.conversations_replies(
        channel="C0INCIDENT", ts=first["ts"], include_all_metadata=True
    )
    assert [m["ts"] for m in replies["messages"]] == [first["ts"], reply["ts"]]
    assert replies["messages"][0]["metadata"] == metadata


async def test_history_errors_are_slacks(slack: SlackEmulator) -> None:
    client = client_for(slack)
    posted = await client.chat_postMessage(channel="C0INCIDENT", text="one")
    missing = await slack_error(client.conversations_replies(channel="C0INCIDENT", ts="1.000001"))
    assert missing.response["error"] == "thread_not_found"
    bad = await slack_error(client.conversations_history(channel="C0INCIDENT", cursor="nope"))
    assert bad.response["error"] == "invalid_cursor"
    nowhere = await slack_error(client.conversations_history(channel="C0NOWHERE"))
    assert nowhere.response["error"] == "channel_not_found"
    schema = await slack_error(
        client.chat_postMessage(channel="C0INCIDENT", text="x", metadata={"event_payload": {}})
    )
    assert schema.response["error"] == "invalid_metadata_schema"
    assert posted["ok"]
