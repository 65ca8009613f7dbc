"""The console in-process: sign-in, CSRF, roles, the pages, and the owner rules through forms.

Everything here is the real app over HTTP (httpx's ASGI transport) on SQLite and PostgreSQL;
the browser suite (test_browser.py) drives the same pages through Chromium.
"""

from __future__ import annotations

import html
from typing import Any

import httpx

from bot.config import BallastConfig
from tests.principals import API_TOKEN, ROSTER
from tests.web.helpers import TOOL_ALERT, csrf_of, post_form, sign_in

TEAMS = {"teams": {"@oncall": ["U0OWNER2", "U0OWNER3"]}}


async def _opened(make_harness: Any, **settings: Any) -> Any:
    h = await make_harness(config=BallastConfig.model_validate(TEAMS), **settings)
    opened = await h.client.post("/webhooks/generic", json={"alerts": [TOOL_ALERT]})
    assert opened.status_code == 200, opened.text
    await h.settle()
    return h


def _browser(h: Any) -> httpx.AsyncClient:
    return h.anonymous


async def test_pages_need_a_sign_in_and_the_login_form_needs_its_csrf_token(
    make_harness: Any,
) -> None:
    h = await _opened(make_harness)
    browser = _browser(h)
    for path in ("/ui/", "/ui/incidents", "/ui/incidents/1", "/ui/runbooks", "/ui/controls"):
        answer = await browser.get(path)
        assert answer.status_code == 303, path
        assert answer.headers["location"].startswith("/ui/login?next="), path
    refused = await browser.post("/ui/login", data={"token": ROSTER["reader"].token})
    assert refused.status_code == 403
    wrong = await sign_in(browser, "not-a-token")
    assert wrong.status_code == 401
    assert "not one this server knows" in wrong.text
    assert "ballast_session" not in (await browser.get("/ui/incidents")).text


async def test_a_signed_in_reader_reads_every_page_but_cannot_act(make_harness: Any) -> None:
    h = await _opened(make_harness)
    browser = _browser(h)
    signed = await sign_in(browser, ROSTER["reader"].token)
    assert signed.status_code == 303
    cookie = signed.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=lax" in cookie
    assert "path=/ui" in cookie
    assert "secure" not in cookie  # plain http here; https gets Secure (test_sessions.py)
    listing = await browser.get("/ui/incidents")
    assert listing.status_code == 200
    assert "search failing on svc-a" in listing.text
    none = await browser.get("/ui/incidents?severity=sev1&status=triggered&status=mitigating")
    assert "No incident matches." in none.text
    recent = await browser.get("/ui/incidents?severity=sev2&since=1h&runbook=svc/tool-failure")
    assert "search failing on svc-a" in recent.text
    h.services.clock.advance(hours=2)
    assert "No incident matches." in (await browser.get("/ui/incidents?since=1h")).text
    detail = await browser.get("/ui/incidents/1")
    assert detail.status_code == 200
    assert "&lt;script&gt;alert(&#39;label&#39;)&lt;/script&gt;" in detail.text
    assert "<script>alert('label')</script>" not in detail.text
    assert "http://ballast.test/ui/incidents/1" in detail.text  # the deep link
    assert 'action="/ui/incidents/1/run"' not in detail.text  # no buttons for readers
    for path in (
        "/ui/runbooks",
        "/ui/runbooks?q=tool",
        "/ui/runbooks/svc/tool-failure",
        "/ui/controls",
        "/ui/controls/svc-a.tools.search.enabled",
        "/ui/incidents/1/postmortem",
    ):
        page = await browser.get(path)
        assert page.status_code == 200, (path, page.text[:300])
    acted = await post_form(
        browser, "/ui/incidents/1", "/ui/incidents/1/run", mitigation="supervised"
    )
    assert acted.status_code == 403
    assert "lacks the responder role" in acted.text


async def test_two_owners_approve_a_high_risk_mitigation_and_one_undoes_it(
    make_harness: Any,
) -> None:
    h = await _opened(make_harness)
    await h.services.controls.write("svc-a.autonomy", "supervised", actor="seed", reason="")
    first, second = _browser(h), h.as_(None)
    await sign_in(first, ROSTER["owner1"].token)
    await sign_in(second, ROSTER["owner2"].token)
    page = "/ui/incidents/1"
    asked = await post_form(first, page, "/ui/incidents/1/run", mitigation="full-autonomy")
    assert asked.status_code == 303
    shown = await first.get(page)
    assert "awaiting_approval" in shown.text
    assert "Approve" in shown.text
    again = await post_form(first, page, "/ui/incidents/1/run", mitigation="full-autonomy")
    assert again.status_code == 403
    # The same refusal as the API's, word for word (the executor's message).
    api = await h.as_("owner1").post("/api/v1/incidents/1/mitigations/full-autonomy/run", json={})
    assert api.status_code == 403
    assert api.json()["detail"] in html.unescape(again.text)
    dry = await post_form(
        second, page, "/ui/incidents/1/run", mitigation="full-autonomy", dry_run="1"
    )
    assert dry.status_code == 303
    approved = await post_form(second, page, "/ui/incidents/1/run", mitigation="full-autonomy")
    assert approved.status_code == 303
    assert (await h.services.controls.read("svc-a.autonomy")) == "full"
    undone = await post_form(first, page, "/ui/incidents/1/undo", mitigation="full-autonomy")
    assert undone.status_code == 303
    assert "undone" in (await first.get(page)).text
    assert (await h.services.controls.read("svc-a.autonomy")) == "supervised"
    history = await first.get("/ui/controls/svc-a.autonomy")
    assert history.status_code == 200
    assert 'href="/ui/incidents/1"' in history.text
    assert "U0OWNER2" in history.text, history.text[-2500:]
    no_csrf = await second.post("/ui/incidents/1/undo", data={"mitigation": "full-autonomy"})
    assert no_csrf.status_code == 403
    assert "CSRF" in no_csrf.text


async def test_operators_set_controls_through_the_apis_checks(make_harness: Any) -> None:
    h = await _opened(make_harness)
    operator = _browser(h)
    await sign_in(operator, ROSTER["operator"].token)
    page = "/ui/controls/svc-a.autonomy"
    bad = await post_form(operator, "/ui/controls", page, value="sideways", reason="try")
    assert bad.status_code == 422
    done = await post_form(operator, "/ui/controls", page, value="supervised", reason="calm")
    assert done.status_code == 303
    shown = await operator.get(page)
    assert "supervised" in shown.text
    assert "[via token operator]" in shown.text
    reader = h.as_(None)
    await sign_in(reader, ROSTER["reader"].token)
    refused = await post_form(reader, "/ui/controls", page, value="full")
    assert refused.status_code == 403


async def test_api_token_and_sign_out(make_harness: Any) -> None:
    h = await _opened(make_harness, api_token=API_TOKEN)
    browser = _browser(h)
    await sign_in(browser, API_TOKEN)
    page = await browser.get("/ui/incidents/1")
    assert "Signed in as <strong>api</strong>" in page.text
    out = await browser.post("/ui/logout", data={"csrf": csrf_of(page)})
    assert out.status_code == 303
    assert (await browser.get("/ui/incidents")).status_code == 303
