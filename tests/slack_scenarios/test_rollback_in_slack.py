"""`to: previous` in Slack: the incident message shows the exact from → to (and who shipped
what, when) before the first click; the approval request shows the change stored with it; a
second owner's click applies exactly that, or is refused when a newer version shipped since.
Signed requests through real Bolt, against the Slack emulator, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.changes.test_change_log import URL, alert, change
from tests.changes.test_rollback_plan import KEY, RUNBOOK
from tests.conftest import Clock
from tests.slack_emulator import SlackEmulator
from tests.slack_emulator.payloads import SlackUser, click
from tests.slack_emulator.signing import RequestSigner
from tests.slack_scenarios.test_incident_in_slack import (
    CHANNEL,
    OWNER,
    SECRET,
    incident_message,
    post_signed,
    settle,
    wait_for,
)

OWNER2 = SlackUser("U0OWNER2", "owner2")


@pytest.fixture(scope="module")
def slack() -> Iterator[SlackEmulator]:
    with SlackEmulator(users=(OWNER, OWNER2), time_scale=60) as emulator:
        yield emulator


@pytest.fixture
def runbooks_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "runbooks"
    folder.mkdir()
    (folder / "rag.yaml").write_text(RUNBOOK)
    return folder


@pytest.fixture
async def h(make_harness: Any, slack: SlackEmulator, clock: Clock) -> Any:
    slack.reset()
    harness = await make_harness(
        slack_bot_token="xoxb-ballast-test",
        slack_signing_secret=SECRET,
        slack_api_url=slack.base_url,
        slack_channel=CHANNEL.id,
    )
    ci = harness.as_("automation")
    await ci.post(URL, json=change(kind="retrieval_index", version="kb-11", by="index-builder"))
    clock.advance(hours=1)
    shipped = change(kind="retrieval_index", version="kb-12", previous="kb-11", by="release-bot")
    await ci.post(URL, json=shipped)
    await harness.services.controls.write(KEY, "kb-12", actor="deploy", reason="")
    clock.advance(minutes=5)
    await ci.post("/webhooks/alertmanager", json=alert(clock, 1))
    await settle(harness)
    return harness


def row(slack: SlackEmulator) -> str:
    """The index rollback's row of the incident message, as Slack shows it."""
    blocks = incident_message(slack)["blocks"]
    sections = [str(b["text"]["text"]) for b in blocks if "text" in b]
    [text] = [t for t in sections if ". Roll the retrieval index back*" in t]
    return text


async def clicked(h: Any, slack: SlackEmulator, action_id: str, user: SlackUser) -> str:
    """``user`` clicks ``action_id`` on the current message; Ballast's ephemeral answer."""
    url = slack.response_url("actions")
    payload = click(
        incident_message(slack), action_id, user=user, channel=CHANNEL, response_url=url
    )
    response = await post_signed(h, RequestSigner(SECRET).interaction(payload))
    assert response.status_code == 200

    async def answered() -> list[Any]:
        return slack.response_posts(url)

    [post] = await wait_for(answered, f"the answer to {action_id}")
    return str(post.body)


async def test_the_approver_sees_and_approves_the_exact_change(
    h: Any, slack: SlackEmulator
) -> None:
    shown = row(slack)
    assert "Sets `rag.retrieval_index`: `kb-12` → `kb-11`" in shown
    assert "release-bot made 'kb-12' live at 2026-11-27 04:00 UTC, replacing 'kb-11'" in shown
    assert "'kb-11' was shipped by index-builder" in shown

    answer = await clicked(h, slack, "ballast.run:index-back", OWNER)
    assert "awaiting_approval" in answer
    assert "it will set rag.retrieval_index: 'kb-12' → 'kb-11'" in answer
    await settle(h)
    pending = row(slack)
    assert "Approving sets `rag.retrieval_index`: `kb-12` → `kb-11`" in pending
    assert "approvals 1 of 2" in pending

    answer = await clicked(h, slack, "ballast.approve:index-back", OWNER2)
    assert "index-back: applied" in answer
    assert await h.services.controls.read(KEY) == "kb-11"
    await settle(h)
    assert "`kb-12` → `kb-11`" in row(slack)


async def test_a_stale_approval_click_applies_nothing(
    h: Any, slack: SlackEmulator, clock: Clock
) -> None:
    await clicked(h, slack, "ballast.run:index-back", OWNER)
    await settle(h)
    clock.advance(minutes=1)
    newer = change(kind="retrieval_index", version="kb-13", previous="kb-12", by="release-bot")
    assert (await h.as_("automation").post(URL, json=newer)).status_code == 201
    await h.services.controls.write(KEY, "kb-13", actor="deploy", reason="")
    await settle(h)
    # The request still shows what was asked for: that is what the click would approve.
    assert "Approving sets `rag.retrieval_index`: `kb-12` → `kb-11`" in row(slack)

    answer = await clicked(h, slack, "ballast.approve:index-back", OWNER2)
    assert "index-back: failed" in answer
    assert "it would now be 'kb-13' → 'kb-12'" in answer
    assert await h.services.controls.read(KEY) == "kb-13"
