"""Phase durations: never-acknowledged and re-opened incidents, on both databases."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Clock
from tests.postmortem.conftest import config_for
from tests.postmortem.scripted import alert, only_incident, post, send


@pytest.fixture
async def h(make_harness: Any, postmortem_folder: Path) -> Any:
    return await make_harness(api_token="api-token", config=config_for(postmortem_folder))


async def test_never_acknowledged(h: Any, clock: Clock) -> None:
    await send(h, alert(starts_at="2026-11-27T02:58:00Z"))
    incident = await only_incident(h)
    clock.advance(minutes=12)
    await post(h, f"/api/v1/incidents/{incident}/resolve", "U0OWNER2")
    facts = await h.services.postmortems.facts(incident)
    assert {p.name: p.seconds for p in facts.phases} == {
        "detect": 120.0,
        "acknowledge": None,
        "mitigate": 0.0,
        "resolve": 720.0,
    }
    markdown = (await h.client.get(f"/api/v1/incidents/{incident}/postmortem")).text
    assert "- **Acknowledged:** never acknowledged\n" in markdown
    assert "| Acknowledge | opened → first acknowledgement | never acknowledged |" in markdown
    assert "It was never acknowledged." in markdown


async def test_reopened_counts_from_the_first_opening_to_the_final_resolve(
    h: Any, clock: Clock
) -> None:
    await send(h, alert())  # 03:00 opened (signal 03:00:30 is later: detect is negative)
    incident = await only_incident(h)
    clock.advance(minutes=5)  # 03:05 the signal recovers: resolved
    await send(h, alert("resolved"))
    clock.advance(minutes=3)  # 03:08 fires again within the reopen window
    await send(h, alert(starts_at="2026-11-27T03:07:45Z"))
    assert await only_incident(h) == incident
    clock.advance(minutes=1)  # 03:09
    await post(h, f"/api/v1/incidents/{incident}/acknowledge", "U0OWNER2")
    clock.advance(minutes=6)  # 03:15
    await post(h, f"/api/v1/incidents/{incident}/resolve", "U0OWNER2")

    facts = await h.services.postmortems.facts(incident)
    assert facts.reopen_count == 1
    assert {p.name: p.seconds for p in facts.phases} == {
        "detect": -30.0,
        "acknowledge": 540.0,
        "mitigate": 0.0,
        "resolve": 900.0,
    }
    assert [
        (e.opened_at.minute, e.resolved_at and e.resolved_at.minute, e.reopened)
        for e in facts.episodes
    ] == [(0, 5, False), (8, 15, True)]
    assert facts.open_seconds == 5 * 60 + 7 * 60
    markdown = (await h.client.get(f"/api/v1/incidents/{incident}/postmortem")).text
    assert "- **Time open:** 12m over 2 episodes (re-opened 1 time(s))" in markdown
    assert "| Resolve | opened → final resolve | 15m |" in markdown
    await h.services.postmortems.drain()
    # One draft per resolve: the first resolve's and the final one's.
    assert (await h.services.postmortems.latest(incident)) is not None


async def test_alert_storm_collapses_in_the_timeline(h: Any, clock: Clock) -> None:
    from bot.incidents.read_model import TimelineOut
    from bot.postmortem.facts import _timeline

    start = clock.now
    entries = [
        TimelineOut(at=start, actor="ballast", kind="opened", summary="Opened", details={}),
        *(
            TimelineOut(
                at=start.replace(minute=2 + i // 20),
                actor="alertmanager",
                kind="alert_firing",
                summary=f"A{i} firing",
                details={},
            )
            for i in range(48)
        ),
        TimelineOut(at=start, actor="U1", kind="acknowledged", summary="Ack", details={}),
    ]
    lines, omitted = _timeline(entries)
    assert [line.text for line in lines] == ["Opened", "48 alerts fired", "Ack"]
    assert (lines[1].at.minute, lines[1].until and lines[1].until.minute) == (2, 4)
    assert omitted == 0
