"""An incident committed but never rendered for Slack gets its message from the next server.

The first server opens the incident and is killed (SIGKILL) with nothing rendered for Slack:
it ran with the console, so the state it leaves is the one a crash between the engine's
commit and the announcer's render leaves (the incident stored, no render recorded). The next
server, with Slack configured (the emulator), posts the incident's message at start, from the
incident's state now. The renders lost inside one process: tests/slack_scenarios/test_catch_up.py.
"""

from __future__ import annotations

from typing import Any

import httpx

from tests.e2e.processes import BallastServer, wait_until
from tests.principals import READ
from tests.slack_emulator.server import DEFAULT_CHANNEL, SlackEmulator

WEBHOOK = "webhook-secret-catch-up"
ALERT = {
    "alerts": [
        {
            "labels": {"alertname": "RetrievalStale", "service": "kb-search", "env": "prod"},
            "annotations": {"summary": "the retrieval index is 3 days old"},
            "starts_at": "2026-12-06T02:00:00Z",
        }
    ]
}


def incidents(server: BallastServer) -> list[dict[str, Any]]:
    response = httpx.get(f"{server.url}/api/v1/incidents", headers=READ, timeout=10)
    response.raise_for_status()
    found: list[dict[str, Any]] = response.json()["incidents"]
    return found


def test_the_next_server_posts_the_message_a_killed_one_never_rendered(make_server: Any) -> None:
    first: BallastServer = make_server(BALLAST_WEBHOOK_TOKEN=WEBHOOK)
    first.start()
    posted = httpx.post(
        f"{first.url}/webhooks/generic",
        json=ALERT,
        headers={"authorization": f"Bearer {WEBHOOK}"},
        timeout=10,
    )
    assert posted.status_code == 200, posted.text
    [incident] = wait_until(lambda: incidents(first), 30, "the incident to open")
    first.kill()

    with SlackEmulator() as slack:
        second: BallastServer = make_server(
            BALLAST_WEBHOOK_TOKEN=WEBHOOK,
            SLACK_BOT_TOKEN="xoxb-catch-up",
            SLACK_SIGNING_SECRET="catch-up-signing-secret",
            BALLAST_SLACK_API_URL=slack.base_url,
            BALLAST_SLACK_CHANNEL=DEFAULT_CHANNEL.id,
        )
        second.start()
        try:
            [message] = wait_until(
                lambda: slack.messages(DEFAULT_CHANNEL.id), 30, "the incident's message"
            )
        finally:
            second.stop()
    assert f"#{incident['id']} " in message["text"]
    assert "Untriaged alert: RetrievalStale — triggered" in message["text"]
    assert "1 incident(s) with a change their Slack message does not show yet" in second.logs()
    assert slack.count("chat.postMessage", channel=DEFAULT_CHANNEL.id) == 1
