"""A storm incident's page and API detail, bounded: a part of its alerts and of the entries
each alert leaves, with what was left out counted, every other entry kept, and the chart
counting every alert.

At 50,000 alerts the unbounded detail took 3-4 s of reads and 29 MB of JSON (issue 16): the
console's page of the incident a storm opened, when the responder needs it, listed them all.
"""

from __future__ import annotations

import html
import re
from typing import Any

import pytest

from bot.config import BallastConfig
from bot.incidents.timeline import PER_ALERT_KINDS
from bot.web.incidents import PAGE_ALERT_ENTRIES, PAGE_ALERTS
from tests.principals import ROSTER
from tests.web.helpers import TOOL_ALERT, sign_in

STORM = PAGE_ALERTS + 50  # more than a page lists


def storm_alerts(count: int) -> list[dict[str, Any]]:
    """``count`` alerts of one group (one incident), each its own fingerprint; every third
    one resolved, so the page must put firing ones first."""
    alerts = []
    for n in range(count):
        alert: dict[str, Any] = {
            **TOOL_ALERT,
            "labels": {**TOOL_ALERT["labels"], "instance": f"pod-{n:04d}"},
        }
        if n % 3 == 0:
            alert["status"] = "resolved"
            alert["ends_at"] = "2026-11-27T03:01:00Z"
        alerts.append(alert)
    return alerts


@pytest.fixture
async def h(make_harness: Any) -> Any:
    h = await make_harness(
        config=BallastConfig.model_validate({"teams": {"@oncall": ["U0OWNER2"]}})
    )
    # The storm's alerts arrive firing, then some resolve: entries of all three kinds.
    firing = [{**a, "status": "firing", "ends_at": None} for a in storm_alerts(STORM)]
    for body in (firing, storm_alerts(STORM)):
        answer = await h.client.post("/webhooks/generic", json={"alerts": body})
        assert answer.status_code == 200, answer.text
        await h.settle()
    return h


async def detail(h: Any, **limits: int) -> dict[str, Any]:
    answer = await h.client.get(
        "/api/v1/incidents/1", params=limits, headers=ROSTER["reader"].headers
    )
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


async def test_the_api_detail_is_whole_unless_limited_and_counts_what_it_left_out(
    h: Any,
) -> None:
    whole = await detail(h)
    assert len(whole["alerts"]) == whole["alert_count"] == STORM
    assert whole["alerts_omitted"] == whole["timeline_omitted"] == 0
    per_alert = [e for e in whole["timeline"] if e["kind"] in PER_ALERT_KINDS]
    others = [e for e in whole["timeline"] if e["kind"] not in PER_ALERT_KINDS]
    assert len(per_alert) >= STORM  # a firing entry each, and a resolved one for a third
    assert others  # opened, the mitigation's entries

    limited = await detail(h, alerts_limit=10, alert_entries_limit=7)
    assert limited["alert_count"] == STORM  # the counts stay the incident's
    assert limited["alerts_omitted"] == STORM - 10
    assert [a["status"] for a in limited["alerts"][1:]] == ["firing"] * 9  # firing first
    assert limited["alerts"][0] == whole["alerts"][0]  # the first, what links fill in from
    # Every entry of the other kinds, the newest 7 of the per-alert ones, in order.
    kept = [i for i, e in enumerate(whole["timeline"]) if e["kind"] in PER_ALERT_KINDS][-7:]
    expected = [
        e for i, e in enumerate(whole["timeline"]) if e["kind"] not in PER_ALERT_KINDS or i in kept
    ]
    assert limited["timeline"] == expected
    assert limited["timeline_omitted"] == len(per_alert) - 7
    # Everything else is the whole detail's.
    for key in ("mitigations", "verifications", "scorecards", "status", "title"):
        assert limited[key] == whole[key], key

    none = await detail(h, alerts_limit=0, alert_entries_limit=0)
    assert (none["alerts"], none["alerts_omitted"]) == ([], STORM)
    assert none["timeline"] == others
    for key in ("mitigations", "verifications", "scorecards", "status", "title"):
        assert none[key] == whole[key], key  # planned from the first alert, listed or not
    bad = await h.client.get(
        "/api/v1/incidents/1",
        params={"alerts_limit": -1},
        headers=ROSTER["reader"].headers,
    )
    assert bad.status_code == 422
    assert "alerts_limit" in bad.text


async def test_answers_to_acknowledge_comment_and_resolve_take_the_same_limits(h: Any) -> None:
    """A caller acting on a storm incident (the CLI) asks for its state, not tens of MB of
    alerts: each answer is the detail ``GET`` gives with the same limits."""
    limits = {"alerts_limit": 0, "alert_entries_limit": 0}
    headers = ROSTER["responder"].headers
    for path, body in (("acknowledge", {}), ("comments", {"text": "vendor down"}), ("resolve", {})):
        answer = await h.client.post(
            f"/api/v1/incidents/1/{path}", json=body, params=limits, headers=headers
        )
        assert answer.status_code in (200, 201), answer.text
        state = answer.json()
        assert (state["alerts"], state["alerts_omitted"]) == ([], STORM)
        assert state == await detail(h, **limits)
    assert state["status"] == "resolved"
    assert any(e["summary"] == "vendor down" for e in state["timeline"])
    unlimited = await h.client.post(
        "/api/v1/incidents/1/comments", json={"text": "again"}, headers=headers
    )
    assert len(unlimited.json()["alerts"]) == STORM  # unlimited, the answer is whole as before


async def test_the_page_lists_a_part_says_so_and_charts_every_alert(h: Any) -> None:
    browser = h.anonymous
    assert (await sign_in(browser, ROSTER["reader"].token)).status_code == 303
    page = await browser.get("/ui/incidents/1")
    assert page.status_code == 200
    text = html.unescape(re.sub(r"\s+", " ", page.text))
    assert f"Showing {PAGE_ALERTS} of {STORM} alerts" in text
    assert page.text.count('<span class="tag alert-') == PAGE_ALERTS
    whole = await detail(h)
    per_alert = sum(1 for e in whole["timeline"] if e["kind"] in PER_ALERT_KINDS)
    assert f"{per_alert - PAGE_ALERT_ENTRIES:,} older entries of alerts" in text
    assert text.count('class="kind-alert_') == PAGE_ALERT_ENTRIES
    assert 'class="kind-opened"' in page.text  # the other entries are all there
    assert f"{STORM} alerts from" in text  # the chart counts them all


async def test_acknowledging_and_resolving_from_the_page_read_no_whole_detail(
    h: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The console's forms act through the API's own code, but answer with the page: the
    whole detail a storm incident's API answer carries is never read for them."""
    from bot.api import incidents as api
    from tests.web.helpers import post_form

    real = api.incident_detail
    reads: list[dict[str, Any]] = []

    async def recorded(services: Any, incident_id: int, **limits: Any) -> Any:
        reads.append(limits)
        return await real(services, incident_id, **limits)

    monkeypatch.setattr(api, "incident_detail", recorded)
    browser = h.anonymous
    assert (await sign_in(browser, ROSTER["responder"].token)).status_code == 303
    for action in ("acknowledge", "resolve"):
        answer = await post_form(browser, "/ui/incidents/1", f"/ui/incidents/1/{action}")
        assert answer.status_code == 303, answer.text
    bounded = {"alerts_limit": PAGE_ALERTS, "alert_entries_limit": PAGE_ALERT_ENTRIES}
    assert reads == [bounded, bounded]  # the page each form was posted from, no more
    whole = await detail(h)
    assert whole["status"] == "resolved"
    assert whole["acknowledged_by"] is not None
