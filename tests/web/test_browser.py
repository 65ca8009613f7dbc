"""The console in headless Chromium (Debian's, never a downloaded browser) against a real
``ballast serve`` on SQLite and PostgreSQL: sign in, filter the list, open an incident, be
refused approving one's own high-risk request, approve as a second owner, undo, read the
control's history, open the postmortem; axe-core on every page (no serious or critical
violation). With ``BALLAST_UPDATE_SCREENSHOTS=1`` it also saves each page to docs/images/.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import REPO, need
from tests.e2e.processes import wait_until
from tests.principals import POST_ALERTS, ROSTER, roster_yaml
from tests.web.helpers import TOOL_ALERT

AXE = REPO / "tests" / "web" / "vendor" / "axe.min.js"
IMAGES = REPO / "docs" / "images"
SCREENSHOTS = os.environ.get("BALLAST_UPDATE_SCREENSHOTS") == "1"
RUNBOOKS = REPO / "tests" / "execution" / "runbooks"
TIMEOUT_MS = 15_000


def chromium() -> str:
    """Debian's Chromium: skipped where missing, a failure in CI (BALLAST_TEST_REQUIRE_ALL)."""
    path = shutil.which("chromium") or (
        "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
    )
    need(path is not None, "Debian's chromium (apt-get install chromium)")
    assert path is not None
    return path


@pytest.fixture
def server(make_server: Any, tmp_path: Path) -> Any:
    """``ballast serve`` with the test roster, an owner team and svc/tool-failure, seeded with
    two incidents (their auto mitigations ran) and svc-a.autonomy at ``supervised``."""
    config = tmp_path / "console.yaml"
    config.write_text(roster_yaml() + 'teams: {"@oncall": ["U0OWNER2", "U0OWNER3"]}\n')
    runbooks = tmp_path / "console-runbooks"
    shutil.copytree(RUNBOOKS, runbooks)
    served = make_server(BALLAST_CONFIG=str(config), BALLAST_RUNBOOKS=str(runbooks))
    served.start()
    with httpx.Client(base_url=served.url, timeout=10) as client:
        put = client.put(
            "/api/v1/controls/svc-a.autonomy",
            json={"value": "supervised", "reason": "seed"},
            headers=ROSTER["operator"].headers,
        )
        assert put.status_code == 200, put.text
        posted = client.post("/webhooks/generic", json={"alerts": alerts()}, headers=POST_ALERTS)
        assert posted.status_code == 200, posted.text

        def mitigated() -> bool:
            answer = client.get("/api/v1/incidents", headers=ROSTER["reader"].headers)
            found = answer.json()["incidents"] if answer.status_code == 200 else []
            return len(found) == 2 and all(i["status"] == "mitigating" for i in found)

        wait_until(mitigated, 30, "the incident and its auto mitigation")
        listed = client.get("/api/v1/incidents", headers=ROSTER["reader"].headers).json()
    search = next(i["id"] for i in listed["incidents"] if i["title"] == "search failing on svc-a")
    asyncio.run(seed_scorecards(served.env["BALLAST_DATABASE_URL"], search))
    return served


async def seed_scorecards(url: str, incident: int) -> None:
    """Scorecard snapshots at open, after a verification and at resolve, as the recorder
    writes them (timeline entries of kind ``scorecard``): no Prometheus in this test."""
    from bot.incidents.read_model import PanelOut, ScorecardOut
    from bot.incidents.timeline import TimelineKind
    from bot.settings import Settings
    from bot.store import incidents as repo
    from bot.store.database import Database

    db = Database(Settings(database_url=url).async_database_url)
    start = datetime.now(UTC) - timedelta(minutes=6)
    moments = (("open", "Opened", 0, 0.42, 2.8), ("verification", "Verified", 3, 0.08, 1.9))
    moments += (("resolve", "Resolved", 6, 0.01, 1.4),)
    try:
        async with db.transaction() as session:
            for moment, label, minutes, failures, latency in moments:
                at = start + timedelta(minutes=minutes)
                panels = [
                    PanelOut(
                        name="tool failure rate", value=failures, unit="%", good="down", scale=100
                    ),
                    PanelOut(name="p95 latency", value=latency, unit="s", good="down"),
                ]
                snapshot = ScorecardOut(moment=moment, label=label, taken_at=at, panels=panels)
                repo.append_timeline(
                    session,
                    incident,
                    at=at,
                    actor="ballast",
                    kind=TimelineKind.SCORECARD,
                    summary=f"Scorecard ({moment})",
                    details=snapshot.model_dump(mode="json"),
                )
    finally:
        await db.close()


def alerts() -> list[dict[str, Any]]:
    """Incident 1: the search tool failing on four pods over six minutes (hostile annotation
    included); incident 2: another tool."""
    now = datetime.now(UTC)
    seeded = []
    for pod, minutes_ago in (("a", 6), ("b", 4), ("c", 4), ("d", 1)):
        alert = copy.deepcopy(TOOL_ALERT)
        alert["labels"]["pod"] = f"search-{pod}"
        alert["starts_at"] = (now - timedelta(minutes=minutes_ago)).isoformat()
        seeded.append(alert)
    other = copy.deepcopy(TOOL_ALERT)
    other["labels"]["tool"] = "browse"
    other["annotations"] = {"summary": "the browse tool times out"}
    other["starts_at"] = (now - timedelta(minutes=2)).isoformat()
    return [*seeded, other]


@pytest.fixture
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    executable = chromium()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, headless=True)
        try:
            yield launched
        finally:
            launched.close()


def accessible(page: Any, name: str, *, shot: bool = True) -> None:
    """axe-core finds no serious or critical violation on the page (WCAG 2.x A and AA)."""
    page.add_script_tag(content=AXE.read_text(encoding="utf-8"))
    result = page.evaluate(
        "async () => await axe.run(document, {runOnly: {type: 'tag', values: "
        "['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']}})"
    )
    bad = [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert not bad, f"{name}: {json.dumps(bad, indent=1)}"
    if SCREENSHOTS and shot:
        IMAGES.mkdir(exist_ok=True)
        page.screenshot(path=str(IMAGES / f"console-{name}.png"), full_page=True)


def sign_in(browser: Any, base: str, who: str, path: str = "/ui/incidents", **options: Any) -> Any:
    # bypass_csp: only so axe-core can be injected; the console itself allows no inline script.
    context = browser.new_context(
        **{"viewport": {"width": 1280, "height": 900}, "color_scheme": "light", "bypass_csp": True}
        | options
    )
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.goto(base + path)
    assert "/ui/login" in page.url  # never open by default
    page.get_by_label("API token").fill(ROSTER[who].token)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"**{path}")
    return page


def test_the_console_scenario(server: Any, browser: Any) -> None:
    base = server.url
    first = sign_in(browser, base, "owner1")
    # The list, filtered.
    assert first.get_by_role("link", name="search failing on svc-a").is_visible()
    assert first.get_by_role("link", name="browse failing on svc-a").is_visible()
    accessible(first, "incidents")
    first.get_by_label("Severity").select_option("sev1")
    first.get_by_role("button", name="Filter").click()
    first.wait_for_url("**severity=sev1**")
    assert first.get_by_text("No incident matches.").is_visible()
    first.get_by_label("Severity").select_option("sev2")
    first.get_by_label("Runbook").select_option("svc/tool-failure")
    first.get_by_role("checkbox", name="mitigating").check()
    first.get_by_role("button", name="Filter").click()
    first.wait_for_url("**runbook=svc%2Ftool-failure**")
    first.get_by_role("link", name="search failing on svc-a").click()
    first.wait_for_url("**/ui/incidents/*")
    incident = first.url.rsplit("/", 1)[1]
    # Hostile label text is shown, not run.
    assert first.get_by_text("<script>alert('label')</script> search is failing").first.is_visible()
    accessible(first, "incident", shot=False)
    row = first.locator("#mitigation-full-autonomy")
    row.get_by_role("button", name="Run Back to full autonomy", exact=True).click()
    first.wait_for_load_state()
    assert "awaiting approval" in row.inner_text()
    # The requester cannot approve their own high-risk request: the executor's refusal.
    with first.expect_response(lambda answer: answer.request.method == "POST") as refused:
        row.get_by_role("button", name="Approve Back to full autonomy", exact=True).click()
    assert refused.value.status == 403  # the API's status for the owner rule
    first.wait_for_load_state()
    assert first.get_by_role("alert").is_visible()
    refusal = first.get_by_role("alert").inner_text()
    assert "Refused" in refusal
    assert "U0OWNER1" in refusal or "different owner" in refusal, refusal
    # A second owner approves: applied.
    second = sign_in(browser, base, "owner2", f"/ui/incidents/{incident}")
    second_row = second.locator("#mitigation-full-autonomy")
    second_row.get_by_role("button", name="Approve Back to full autonomy", exact=True).click()
    second.wait_for_load_state()
    assert "applied" in second.get_by_role("status").inner_text()
    assert "applied" in second_row.inner_text()
    assert "supervised → full" in second_row.inner_text()
    # Undo it.
    second_row.get_by_role("button", name="Undo Back to full autonomy", exact=True).click()
    second.wait_for_load_state()
    assert "undone" in second.locator("#mitigation-full-autonomy").inner_text()
    assert second.get_by_role("img", name="Alerts per minute").is_visible()
    panel = second.get_by_role("img", name="tool failure rate (lower is better)")
    assert panel.is_visible()
    assert "Opened: 42%" in panel.inner_html()
    accessible(second, "incident")
    # The control's history, from the timeline's link, and back to the incident.
    second.locator("#timeline").get_by_role("link", name="svc-a.autonomy").first.click()
    second.wait_for_url("**/ui/controls/svc-a.autonomy")
    history = second.locator("#history").inner_text()
    assert "U0OWNER2" in history
    assert history.count(f"#{incident}") >= 2  # the apply and the undo link to the incident
    accessible(second, "control")
    second.get_by_role("link", name="Controls").first.click()
    accessible(second, "controls")
    # The postmortem draft.
    second.goto(f"{base}/ui/incidents/{incident}")
    second.get_by_role("link", name="Postmortem draft").click()
    second.wait_for_url(f"**/ui/incidents/{incident}/postmortem")
    heading = f"Postmortem draft for #{incident}"
    assert second.get_by_role("heading", name=heading).is_visible()
    accessible(second, "postmortem")
    # Runbooks: the catalog with search and the runbook.
    second.goto(base + "/ui/runbooks?q=tool")
    accessible(second, "runbooks")
    second.get_by_role("link", name="svc/tool-failure").click()
    second.wait_for_url("**/ui/runbooks/svc/tool-failure")
    assert second.get_by_role("heading", name="Mitigations").is_visible()
    accessible(second, "runbook")


def test_reading_without_javascript_in_the_dark_and_by_keyboard(server: Any, browser: Any) -> None:
    """No script: pages still read (times in UTC); dark scheme: still no serious axe finding
    (contrast included); the keyboard reaches the skip link first and the filters after it;
    with script, times show in the viewer's zone with UTC kept in the title."""
    base = server.url
    plain = sign_in(browser, base, "reader", java_script_enabled=False, color_scheme="dark")
    plain.get_by_role("link", name="search failing on svc-a").click()
    plain.wait_for_url("**/ui/incidents/*")
    assert "UTC" in plain.locator("time").first.inner_text()
    assert plain.get_by_role("heading", name="Timeline").is_visible()
    assert plain.get_by_role("button", name="Approve", exact=False).count() == 0  # a reader
    dark = sign_in(browser, base, "reader", color_scheme="dark", timezone_id="Asia/Tokyo")
    accessible(dark, "incidents-dark", shot=False)
    dark.keyboard.press("Tab")
    assert dark.evaluate("document.activeElement.textContent") == "Skip to content"
    dark.keyboard.press("Enter")
    assert dark.evaluate("document.activeElement.id") == "main"
    shown = dark.locator("time").first
    assert "UTC" not in shown.inner_text()  # Tokyo time, by the browser's own zone
    assert shown.get_attribute("title").endswith(" UTC")
    assert shown.get_attribute("datetime").endswith("Z")
    dark.get_by_role("link", name="search failing on svc-a").click()
    dark.wait_for_url("**/ui/incidents/*")
    accessible(dark, "incident-dark")
    # Live refresh: a new incident appears in the list without reloading the page.
    dark.goto(base + "/ui/incidents")
    dark.evaluate("window.__stayed = true")
    dark.wait_for_timeout(11_000)  # one refresh with nothing new: nothing announced
    assert dark.locator("#refresh-status").inner_text() == ""
    fresh = copy.deepcopy(TOOL_ALERT)
    fresh["labels"]["tool"] = "summarize"
    fresh["starts_at"] = datetime.now(UTC).isoformat()
    with httpx.Client(base_url=base, timeout=10) as client:
        posted = client.post("/webhooks/generic", json={"alerts": [fresh]}, headers=POST_ALERTS)
        assert posted.status_code == 200
    dark.get_by_role("link", name="summarize failing on svc-a").wait_for(timeout=30_000)
    assert dark.evaluate("window.__stayed") is True
    assert dark.locator("#refresh-status").inner_text() == "Updated: 3 incidents"
