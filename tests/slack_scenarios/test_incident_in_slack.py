"""Scenarios through Slack: a real HTTP Slack emulation, signed requests, real Bolt.

alert → incident message → an owner clicks Run → action applied → message updated in place;
a non-owner's click is refused (and recorded); a badly signed or stale request gets 401; a
storm's more-alerts changes render the message once per window, not once per engine batch
(issue 16: the engine awaits the announcer, and a render per batch kept a 3,000 alerts/s storm
minutes behind), and the message still converges to the last counts.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bot.config import BallastConfig
from bot.slack.outbox import OutboxKind
from bot.slack.update_window import UPDATE_EVERY_SECONDS
from bot.store.tables import SlackOutboxEntry
from tests.principals import BRIDGE
from tests.slack_emulator import SlackEmulator
from tests.slack_emulator.payloads import SlackChannel, SlackUser, click, slash_command_form
from tests.slack_emulator.server import DEFAULT_CHANNEL
from tests.slack_emulator.signing import RequestSigner

RUNBOOKS = Path(__file__).resolve().parents[1] / "execution" / "runbooks"
SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
OWNER = SlackUser("U0OWNER1", "owner")
STRANGER = SlackUser("U0STRANGE", "stranger")
CHANNEL: SlackChannel = DEFAULT_CHANNEL
ALERT = {
    "labels": {"alertname": "ToolFailing", "service": "svc-a", "tool": "search"},
    "starts_at": "2026-11-27T02:00:00Z",
}


async def settle(h: Any) -> None:
    """Let the engine, auto mitigations, listeners and the Slack outbox all finish; move the
    clock past the 15 s per-message update budget so coalesced updates go out."""
    for _ in range(3):
        await h.settle()
        h.services.clock.advance(seconds=16)
        await h.services.delivery.drain()
        await asyncio.sleep(0.05)


async def post_signed(h: Any, request: Any) -> Any:
    return await h.client.post("/slack/events", content=request.body, headers=request.headers)


def incident_message(slack: SlackEmulator) -> dict[str, Any]:
    [message] = slack.messages(CHANNEL.id)
    return message


async def wait_for(check: Any, what: str) -> Any:
    for _ in range(100):
        found = await check()
        if found:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def test_owner_clicks_run_and_the_message_follows(h: Any, slack: SlackEmulator) -> None:
    await h.client.post("/webhooks/generic", json={"alerts": [ALERT]})
    await settle(h)
    assert slack.count("chat.postMessage", channel=CHANNEL.id) >= 1
    message = incident_message(slack)
    assert "search failing on svc-a" in message["text"]

    signer = RequestSigner(SECRET)
    payload = click(
        message,
        "ballast.run:supervised",
        user=OWNER,
        channel=CHANNEL,
        response_url=slack.response_url("actions"),
    )
    response = await post_signed(h, signer.interaction(payload))
    assert response.status_code == 200

    async def applied() -> bool:
        body = (await h.client.get("/api/v1/incidents/1")).json()
        states = {m["id"]: m["state"] for m in body["mitigations"]}
        return states["supervised"] == "applied"

    await wait_for(applied, "the click to apply the mitigation")
    assert await h.services.controls.read("svc-a.autonomy") == "supervised"
    await settle(h)
    updated = incident_message(slack)
    assert slack.count("chat.update") >= 1
    assert "ballast.undo:supervised" in str(updated["blocks"])
    posts = slack.response_posts()
    assert any("supervised: applied" in str(post) for post in posts)
    assert not slack.unretried_rate_limits(match="target")


async def test_non_owner_click_is_refused_and_recorded(h: Any, slack: SlackEmulator) -> None:
    await h.client.post("/webhooks/generic", json={"alerts": [ALERT]})
    await settle(h)
    payload = click(
        incident_message(slack),
        "ballast.run:supervised",
        user=STRANGER,
        channel=CHANNEL,
        response_url=slack.response_url("actions"),
    )
    response = await post_signed(h, RequestSigner(SECRET).interaction(payload))
    assert response.status_code == 200

    async def refused() -> list[Any]:
        body = (await h.client.get("/api/v1/incidents/1")).json()
        return [e for e in body["timeline"] if e["kind"] == "mitigation_refused"]

    [entry] = await wait_for(refused, "the refusal")
    assert entry["actor"] == STRANGER.id
    assert await h.services.controls.read("svc-a.autonomy") is None
    await wait_for(
        lambda: _async(any("not an owner" in str(p) for p in slack.response_posts())),
        "the ephemeral explanation",
    )


async def test_bad_or_stale_signature_is_401(h: Any, slack: SlackEmulator) -> None:
    signer = RequestSigner(SECRET)
    form = slash_command_form("/ballast", "list", user=OWNER, channel=CHANNEL)
    good = signer.slash_command(form)
    assert (await post_signed(h, good)).status_code == 200
    assert (await post_signed(h, good.with_bad_signature())).status_code == 401
    assert (await post_signed(h, signer.stale(good))).status_code == 401


async def test_slash_command_unknown_input_answers_usage(h: Any, slack: SlackEmulator) -> None:
    signer = RequestSigner(SECRET)
    url = slack.response_url("commands")
    form = slash_command_form(
        "/ballast", "frobnicate 7", user=OWNER, channel=CHANNEL, response_url=url
    )
    response = await post_signed(h, signer.slash_command(form))
    assert response.status_code == 200

    async def answered() -> list[Any]:
        return slack.response_posts(url)

    [post] = await wait_for(answered, "the usage answer")
    assert "Usage" in str(post) or "usage" in str(post)
    assert "Traceback" not in str(post)


async def _async(value: Any) -> Any:
    return value


async def test_owner_through_slack_user_group(make_harness: Any, slack: SlackEmulator) -> None:
    """Owners in a Slack user group (usergroups.users.list) may approve; the lookup is cached."""
    slack.reset()
    slack.set_usergroup("S0ONCALL", ["U0MEMBER"])
    h = await make_harness(
        config=BallastConfig.model_validate({"slack": {"usergroup_ids": {"@oncall": "S0ONCALL"}}}),
        slack_bot_token="xoxb-ballast-test",
        slack_signing_secret=SECRET,
        slack_api_url=slack.base_url,
        slack_channel=CHANNEL.id,
        api_token="t",
    )
    await h.client.post("/webhooks/generic", json={"alerts": [ALERT]})
    await settle(h)
    auth = BRIDGE.headers  # names the acting person in the body
    for _ in range(3):
        response = await h.client.post(
            "/api/v1/incidents/1/mitigations/supervised/run",
            json={"actor": "U0MEMBER", "dry_run": True},
            headers=auth,
        )
        assert response.status_code == 200, response.text
    blocked = await h.client.post(
        "/api/v1/incidents/1/mitigations/call-vendor/run",
        json={"actor": "U0MEMBER", "dry_run": True},
        headers=auth,
    )
    assert blocked.status_code == 409
    assert "not allowed for http_request" in blocked.json()["detail"]
    refused = await h.client.post(
        "/api/v1/incidents/1/mitigations/supervised/run", json={"actor": "U0NOBODY"}, headers=auth
    )
    assert refused.status_code == 403
    assert slack.count("usergroups.users.list") == 1


async def test_alert_storm_costs_calls_per_incident_not_per_alert(
    h: Any, slack: SlackEmulator
) -> None:
    """1,000 alerts in 20 groups: Slack calls in proportion to the 20 incidents."""
    from sqlalchemy import func, select

    from bot.store.tables import SlackOutboxEntry

    alerts = [
        {
            "labels": {
                "alertname": "ToolFailing",
                "service": f"svc-{n % 20}",
                "tool": "search",
                "instance": f"pod-{n}",
            },
            "starts_at": "2026-11-27T02:00:00Z",
        }
        for n in range(1000)
    ]
    for start in range(0, 1000, 50):
        response = await h.client.post(
            "/webhooks/generic", json={"alerts": alerts[start : start + 50]}
        )
        assert response.status_code == 200
        await h.settle()

    async def pending() -> int:
        async with h.services.db.sessions() as session:
            return int(
                await session.scalar(
                    select(func.count())
                    .select_from(SlackOutboxEntry)
                    .where(SlackOutboxEntry.state.in_(("pending", "sending")))
                )
                or 0
            )

    for _ in range(60):
        h.services.clock.advance(seconds=5)
        await h.services.delivery.drain()
        if await pending() == 0:
            break
    assert await pending() == 0
    incidents = (await h.client.get("/api/v1/incidents", params={"limit": 100})).json()["incidents"]
    assert len(incidents) == 20
    top_level = list(slack.messages(CHANNEL.id))
    assert len(top_level) == 20  # one message per incident, never one per alert
    posts = slack.count("chat.postMessage", ok=True)
    updates = slack.count("chat.update", ok=True)
    assert posts - 20 <= 20 * 2  # thread notes: bounded per incident
    assert updates <= 20 * 3
    assert (posts + updates) / 20 <= 3 + 2
    assert not slack.unretried_rate_limits(match="target")
    for message in top_level:
        assert "50 firing" in str(message["blocks"]) or "50 of 50" in str(message["blocks"])


async def test_event_retries_and_duplicates_do_nothing_twice(h: Any, slack: SlackEmulator) -> None:
    from tests.slack_emulator.payloads import app_mention_event, event_callback

    signer = RequestSigner(SECRET)
    envelope = event_callback(
        app_mention_event("<@U0BALLAST1> help", user=OWNER, channel=CHANNEL), event_id="Ev0RETRY1"
    )
    first = signer.event(envelope)
    for request in (first, signer.retry(first, num=1), signer.retry(first, num=2), first):
        assert (await post_signed(h, request)).status_code == 200
    await asyncio.sleep(0.2)
    await settle(h)
    replies = [
        c
        for c in slack.calls("chat.postMessage", channel=CHANNEL.id, ok=True)
        if "/ballast help" in str(c.args.get("text", ""))
    ]
    assert len(replies) == 1


async def test_two_person_high_risk_approval_in_slack(h: Any, slack: SlackEmulator) -> None:
    """Run by one owner, a second click by the same owner refused, approved by another."""
    second = SlackUser("U0OWNER2", "second")
    await h.client.post("/webhooks/generic", json={"alerts": [ALERT]})
    await settle(h)
    signer = RequestSigner(SECRET)

    async def state() -> dict[str, Any]:
        body = (await h.client.get("/api/v1/incidents/1")).json()
        return next(m for m in body["mitigations"] if m["id"] == "full-autonomy")

    requested = click(
        incident_message(slack),
        "ballast.run:full-autonomy",
        user=OWNER,
        channel=CHANNEL,
        response_url=slack.response_url("actions"),
    )
    assert (await post_signed(h, signer.interaction(requested))).status_code == 200
    await wait_for(lambda: _awaiting(state), "the request to be recorded")
    await settle(h)
    message = incident_message(slack)
    assert "ballast.approve:full-autonomy" in str(message["blocks"])
    assert await h.services.controls.read("svc-a.autonomy") is None

    again = click(
        message,
        "ballast.approve:full-autonomy",
        user=OWNER,
        channel=CHANNEL,
        response_url=slack.response_url("actions"),
    )
    await post_signed(h, signer.interaction(again))
    await wait_for(
        lambda: _async(any("two people" in str(p) for p in slack.response_posts())),
        "the same-person refusal",
    )
    assert await h.services.controls.read("svc-a.autonomy") is None

    approved = click(
        message,
        "ballast.approve:full-autonomy",
        user=second,
        channel=CHANNEL,
        response_url=slack.response_url("actions"),
    )
    await post_signed(h, signer.interaction(approved))

    async def applied() -> bool:
        return (await state())["state"] == "applied"

    await wait_for(applied, "the second approval to apply it")
    final = await state()
    assert (final["requested_by"], final["approvals"]) == ("U0OWNER1", ["U0OWNER1", "U0OWNER2"])
    assert await h.services.controls.read("svc-a.autonomy") == "full"
    await settle(h)
    assert "U0OWNER2" in str(incident_message(slack)["blocks"])


async def _awaiting(state: Any) -> bool:
    return bool((await state())["state"] == "awaiting_approval")


async def test_shutdown_waits_for_lazy_listeners_still_answering(
    h: Any, slack: SlackEmulator
) -> None:
    """Bolt runs the work after the ack as untracked tasks; Ballast keeps them and its
    shutdown waits for them, so no answer is dropped and no Slack connection left open."""
    from bot.slack.bolt_app import TrackedLazyListenerRunner, drain_lazy_listeners

    runner = h.services.slack_app._async_listener_runner.lazy_listener_runner
    assert isinstance(runner, TrackedLazyListenerRunner)
    url = slack.response_url("commands")
    form = slash_command_form("/ballast", "help", user=OWNER, channel=CHANNEL, response_url=url)
    response = await post_signed(h, RequestSigner(SECRET).slash_command(form))
    assert response.status_code == 200  # acked; the answer is being written meanwhile
    await drain_lazy_listeners(h.services.slack_app)  # what the lifespan's shutdown does
    assert runner.tasks == set()
    assert len(slack.response_posts(url)) == 1


async def renders_enqueued(h: Any, incident_id: int) -> int:
    """Every message the announcer enqueued for the incident: each row, and each newer
    payload a row took while it waited (``revision``)."""
    async with h.services.db.sessions() as session:
        total = await session.scalar(
            select(func.sum(SlackOutboxEntry.revision + 1)).where(
                SlackOutboxEntry.incident_id == incident_id,
                SlackOutboxEntry.kind.in_([OutboxKind.POST, OutboxKind.UPDATE]),
            )
        )
    return int(total or 0)


def storm_alert(pod: int) -> dict[str, Any]:
    return {**ALERT, "labels": {**ALERT["labels"], "pod": f"pod-{pod}"}}


async def test_a_storm_renders_its_message_once_per_window(h: Any, slack: SlackEmulator) -> None:
    await h.client.post("/webhooks/generic", json={"alerts": [storm_alert(0)]})
    await settle(h)  # posted, and the auto mitigation's notes announced
    [incident] = (await h.client.get("/api/v1/incidents")).json()["incidents"]
    before = await renders_enqueued(h, incident["id"])

    started = time.monotonic()
    for pod in range(1, 31):  # thirty engine batches, each with one more alert
        response = await h.client.post("/webhooks/generic", json={"alerts": [storm_alert(pod)]})
        assert response.status_code == 200, response.text
        await h.services.engine.process_pending()  # or the background engine did
    took = time.monotonic() - started
    renders = await renders_enqueued(h, incident["id"]) - before
    # At most one render per window (the first of these batches came inside the window of
    # the announcement before it); fault: rendering every batch enqueues 30.
    assert renders <= int(took // UPDATE_EVERY_SECONDS) + 1, (renders, took)

    await settle(h)  # what the window held is enqueued, with the counts as they are now
    assert await renders_enqueued(h, incident["id"]) - before <= renders + 1
    assert "*Alerts firing*\\n31 of 31" in str(incident_message(slack)["blocks"])
