"""``ballast incidents ack|resolve`` and ``ballast mitigations list|run|undo`` against a real
``ballast serve``: the same policy, audit and error messages as the JSON API."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from bot.cli import build_cli
from tests.e2e.processes import free_port, wait_until
from tests.principals import POST_ALERTS, READ, ROSTER

pytestmark = pytest.mark.slow

TOKEN = ROSTER["lh"].token  # the named token of U024BE7LH, an owner of
OWNER = "U024BE7LH"  # support-assistant/low-groundedness by id
ALERT = {
    "labels": {"alertname": "LowGroundedness", "service": "support-assistant"},
    "annotations": {"summary": "groundedness 0.41"},
    "status": "firing",
    "starts_at": "2026-11-27T02:00:00Z",
}


def cli(url: str, *args: str, token: str | None = TOKEN) -> tuple[int, str]:
    env = {"BALLAST_URL": url, "BALLAST_API_TOKEN": token}
    result = CliRunner().invoke(build_cli(), list(args), env=env)
    return result.exit_code, result.output


def open_incident(url: str) -> int:
    response = httpx.post(
        f"{url}/webhooks/generic", json={"alerts": [ALERT]}, headers=POST_ALERTS, timeout=5
    )
    assert response.status_code == 200, response.text

    def opened() -> Any:
        return httpx.get(f"{url}/api/v1/incidents", headers=READ, timeout=2).json()["incidents"]

    [incident] = wait_until(opened, 10, "the incident to open")
    return int(incident["id"])


def test_ack_run_undo_resolve_through_the_server(make_server: Any) -> None:
    server = make_server()
    server.start()
    url = server.url
    incident = open_incident(url)

    code, out = cli(url, "mitigations", "list", str(incident))
    assert code == 0, out
    header, *rows = out.splitlines()
    assert header.split() == ["MITIGATION", "STATE", "MODE", "RISK", "ACTION", "TITLE"]
    assert [row.split()[:3] for row in rows[:2]] == [
        ["review-high-risk", "not_run", "approve"],
        ["lower-autonomy", "not_run", "approve"],
    ]
    # Then the exact change a run would make now, from the server's planner.
    assert rows[2:] == [
        "review-high-risk: sets support-assistant.human_review: (unset) → 'high_risk'",
        "lower-autonomy: sets support-assistant.autonomy: (unset) → 'supervised'",
    ]

    code, out = cli(url, "incidents", "ack", str(incident))
    assert (code, out) == (
        0,
        f"#{incident} acknowledged: Groundedness low on support-assistant (1/1 firing)\n",
    )

    code, out = cli(url, "mitigations", "run", str(incident), "review-high-risk", "--dry-run")
    assert code == 0, out
    assert out.startswith(f"#{incident} review-high-risk: ")
    code, out = cli(url, "mitigations", "list", str(incident))
    assert "review-high-risk  not_run" in out  # a dry run changes nothing

    code, out = cli(url, "mitigations", "run", str(incident), "review-high-risk")
    assert (code, out) == (
        0,
        f"#{incident} review-high-risk: applied: "
        "support-assistant.human_review: (unset) → 'high_risk' (builtin)\n",
    )
    code, out = cli(url, "mitigations", "undo", str(incident), "review-high-risk")
    assert code == 0, out
    assert out.startswith(f"#{incident} review-high-risk: undone: ")

    # The policy is the server's: someone who is not an owner is refused with its message.
    stranger = ROSTER["stranger"].token
    code, out = cli(url, "mitigations", "run", str(incident), "lower-autonomy", token=stranger)
    assert code == 1
    assert out.startswith("ballast: server answered 403: U0STRANGER is not an owner of this")
    # Nor may anyone claim to be someone else.
    code, out = cli(
        url, "mitigations", "run", str(incident), "lower-autonomy", "--actor", OWNER, token=stranger
    )
    assert code == 1
    assert out.startswith("ballast: server answered 403: stranger may not act as 'U024BE7LH'")

    code, out = cli(url, "incidents", "comment", str(incident), "vendor status page is red")
    assert code == 0, out
    assert out.startswith(f"#{incident}: comment added")
    code, out = cli(url, "incidents", "escalate", str(incident))
    assert code == 1, out  # this runbook defines no escalation path
    assert out.startswith("ballast: server answered 409: ")
    assert "has no escalation path" in out

    code, out = cli(url, "incidents", "resolve", str(incident), "--reason", "ok")
    assert (code, out.split(":")[0]) == (0, f"#{incident} resolved")

    # Every change is in the incident's timeline, by the CLI's actor.
    detail = httpx.get(f"{url}/api/v1/incidents/{incident}", headers=READ, timeout=2).json()
    summaries = [t["summary"] for t in detail["timeline"] if t["actor"] == OWNER]
    assert any("acknowledged" in s.lower() for s in summaries), summaries
    assert any("resolved" in s.lower() for s in summaries), summaries
    assert "vendor status page is red" in summaries

    # Errors carry the server's message.
    code, out = cli(url, "incidents", "ack", "999")
    assert (code, out) == (1, "ballast: server answered 404: incident 999 does not exist\n")
    code, out = cli(url, "incidents", "ack", str(incident), token="wrong")
    assert (code, out) == (
        1,
        "ballast: server answered 401: not authenticated: the bearer token is not one this "
        "server knows\n",
    )
    code, out = cli(url, "mitigations", "run", str(incident), "nope")
    assert code == 1
    assert out.startswith("ballast: server answered 404: ")
    assert "nope" in out


def test_no_server_says_which_url_and_how_to_change_it() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    code, out = cli(url, "incidents", "ack", "1")
    assert (code, out) == (
        1,
        f"ballast: cannot connect to Ballast at {url}: is `ballast serve` running there? "
        "Point --url or BALLAST_URL at the server\n",
    )
