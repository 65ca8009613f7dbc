"""A change whose Slack render was lost is rendered by the announcer's catch-up.

The announcer renders after the change's commit, from memory (issue 16: off the engine's
path), so a crash or a failed render could leave an incident without a message, or with one
that shows an older state, until its next change. Each render records the state it was made
from (``slack_renders``); the catch-up renders what differs. Through the app: real Bolt, the
Slack emulator, the outbox and its delivery. A server killed with the change unrendered:
``tests/e2e/test_slack_catch_up.py``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from bot.config import BallastConfig
from bot.incidents.changes import IncidentChange
from bot.slack import announcer as announcer_module
from bot.slack.announcer import CATCH_UP_RESOLVED
from tests.principals import BRIDGE
from tests.slack_emulator import SlackEmulator
from tests.slack_scenarios.test_incident_in_slack import (
    ALERT,
    CHANNEL,
    SECRET,
    settle,
)


def lose_renders(monkeypatch: pytest.MonkeyPatch, h: Any) -> list[IncidentChange]:
    """The announcer hears nothing from here on, as if each change's process died after its
    commit; returns the changes that were lost."""
    lost: list[IncidentChange] = []

    async def dropped(changes: list[IncidentChange]) -> None:
        lost.extend(changes)

    monkeypatch.setattr(h.services.announcer, "incidents_changed", dropped)
    return lost


async def test_failed_renders_are_posted_by_the_catch_up(
    h: Any, slack: SlackEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = announcer_module.load_incident_detail
    failures: list[int] = []

    async def failing(incident_id: int, *args: Any, **kwargs: Any) -> Any:
        failures.append(incident_id)
        raise ConnectionResetError("the database went away mid-render")

    # Every render fails: the opening's and the auto mitigation's.
    monkeypatch.setattr(
        announcer_module, "load_incident_detail", lambda db, c, r, i, **kw: failing(i)
    )
    await h.client.post("/webhooks/generic", json={"alerts": [ALERT]})
    await settle(h)
    assert failures  # no message, and no thread
    assert slack.count("chat.postMessage", channel=CHANNEL.id) == 0
    monkeypatch.setattr(announcer_module, "load_incident_detail", real)

    assert await h.services.announcer.catch_up_once() == (1, 1)
    await settle(h)
    [message] = slack.messages(CHANNEL.id)
    assert "search failing on svc-a" in message["text"]
    # Its render was recorded: nothing is behind any more, and nothing is sent again.
    calls = len(slack.calls())
    assert await h.services.announcer.catch_up_once() == (0, 0)
    await settle(h)
    assert len(slack.calls()) == calls


async def test_a_lost_change_is_shown_and_rendered_changes_are_left_alone(
    h: Any, slack: SlackEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    await h.client.post("/webhooks/generic", json={"alerts": [ALERT]})
    await settle(h)
    # The opening and the auto mitigation's changes were rendered: nothing is behind.
    assert await h.services.announcer.catch_up_once() == (0, 0)
    [message] = slack.messages(CHANNEL.id)
    assert "not acknowledged" in str(message)

    lost = lose_renders(monkeypatch, h)
    acked = await h.client.post(
        "/api/v1/incidents/1/acknowledge", json={"actor": "U0OWNER2"}, headers=BRIDGE.headers
    )
    assert acked.status_code == 200, acked.text
    await settle(h)
    assert [change.incident_id for change in lost] == [1]
    assert "not acknowledged" in str(slack.messages(CHANNEL.id)[0])

    monkeypatch.undo()
    assert await h.services.announcer.catch_up_once() == (1, 1)
    await settle(h)
    [message] = slack.messages(CHANNEL.id)  # updated in place, not posted again
    assert "not acknowledged" not in str(message)
    assert "by <@U0OWNER2>" in str(message)
    assert await h.services.announcer.catch_up_once() == (0, 0)


async def test_resolved_incidents_are_caught_up_for_a_day(
    h: Any, slack: SlackEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = {**ALERT, "labels": {**ALERT["labels"], "service": "svc-b"}}
    await h.client.post("/webhooks/generic", json={"alerts": [ALERT, other]})
    await settle(h)
    lose_renders(monkeypatch, h)
    for incident_id in (1, 2):
        resolved = await h.client.post(
            f"/api/v1/incidents/{incident_id}/resolve",
            json={"actor": "U0OWNER2"},
            headers=BRIDGE.headers,
        )
        assert resolved.status_code == 200, resolved.text
        if incident_id == 1:
            # Incident 1 resolved a day and a minute before the catch-up; incident 2 just now.
            h.services.clock.advance(
                seconds=(CATCH_UP_RESOLVED + timedelta(minutes=1)).total_seconds()
            )
    monkeypatch.undo()
    assert await h.services.announcer.catch_up_once() == (1, 1)
    await settle(h)
    messages = {m["text"]: m for m in slack.messages(CHANNEL.id)}
    assert len(messages) == 2
    [svc_b] = [m for text, m in messages.items() if "svc-b" in text]
    [svc_a] = [m for text, m in messages.items() if "svc-a" in text]
    assert "— resolved;" in svc_b["text"]
    assert "— mitigating;" in svc_a["text"]  # left as it was: older than the catch-up looks


async def test_incidents_it_cannot_post_hold_no_others_back_and_are_logged_once(
    make_harness: Any,
    slack: SlackEmulator,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """No channel for two triage incidents (no ``BALLAST_SLACK_CHANNEL``): they stay behind.
    The catch-up walks on past them a page at a time, so a third incident's lost message is
    posted, and says once per incident what is missing, not every minute."""
    slack.reset()
    config = {
        "teams": {"@oncall": ["U0OWNER2"]},
        "slack": {"runbook_channels": {"svc/tool-failure": CHANNEL.id}},
    }
    h = await make_harness(
        config=BallastConfig.model_validate(config),
        slack_bot_token="xoxb-ballast-test",
        slack_signing_secret=SECRET,
        slack_api_url=slack.base_url,
    )
    # Two triage incidents (no runbook matches): no channel names them.
    unposted = [
        {
            "labels": {"alertname": "DiskFilling", "service": service},
            "starts_at": ALERT["starts_at"],
        }
        for service in ("svc-a", "svc-b")
    ]
    await h.client.post("/webhooks/generic", json={"alerts": unposted})
    await settle(h)
    lose_renders(monkeypatch, h)
    await h.client.post("/webhooks/generic", json={"alerts": [ALERT]})
    await settle(h)
    monkeypatch.undo()
    assert slack.messages(CHANNEL.id) == []

    monkeypatch.setattr(announcer_module, "CATCH_UP_BATCH", 2)
    announcer = h.services.announcer
    for _ in range(3):  # svc-a and svc-b's page, svc-c's, then from the start again
        await announcer.catch_up_once()
        await settle(h)
    [message] = slack.messages(CHANNEL.id)
    assert "search failing on svc-a" in message["text"]
    missing = [r.getMessage() for r in caplog.records if "no Slack channel" in r.getMessage()]
    assert [m.split(" (")[0] for m in missing] == [
        "no Slack channel for incident #1",
        "no Slack channel for incident #2",
    ]
    # Still behind (posted once a channel is configured): the walk's end, then its start.
    assert [await announcer.catch_up_once() for _ in range(2)] == [(0, 0), (2, 2)]
