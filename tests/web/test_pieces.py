"""The console's parts on their own: session cookies, the safe Markdown renderer, the SVG
charts, the trusted proxy, and deep links under BALLAST_PUBLIC_URL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.config import BallastConfig
from bot.incidents.read_model import AlertOut, IncidentDetail, PanelOut, ScorecardOut
from bot.web.charts import alerts_per_minute, scorecard_panels
from bot.web.forms import safe_next
from bot.web.markdown import render
from bot.web.pages import show_value, web_url, when
from bot.web.sessions import Session, SessionCodec, same_csrf
from tests.principals import ROSTER
from tests.web.helpers import TOOL_ALERT, csrf_of, sign_in

T0 = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_a_session_is_refused_when_tampered_with_signed_elsewhere_or_expired() -> None:
    clock = Clock()
    codec = SessionCodec(b"k" * 32, clock)
    session = Session().signed_in({"m": "token", "n": "alice", "d": "ab"}, clock())
    session.flash = "done"
    cookie = codec.dump(session)
    loaded = codec.load(cookie)
    assert loaded is not None
    assert loaded.who == {"m": "token", "n": "alice", "d": "ab"}
    assert loaded.flash == "done"
    assert same_csrf(session.csrf, loaded)
    assert not same_csrf("other", loaded)
    assert not same_csrf(None, loaded)
    assert not same_csrf(session.csrf, None)
    payload, signature = cookie.split(".")
    assert codec.load(payload[:-2] + "AA." + signature) is None  # tampered
    assert SessionCodec(b"x" * 32, clock).load(cookie) is None  # another key
    assert codec.load("no-dot") is None
    assert codec.load(None) is None
    forged = "bm90IGpzb24"  # "not json", signed properly
    assert codec.load(f"{forged}.{codec._sign(forged)}") is None
    clock.now += 12 * 3600 + 1
    assert codec.load(cookie) is None  # expired


def test_random_keys_differ_and_a_secret_is_shared() -> None:
    cookie = SessionCodec.with_secret("shared").dump(Session())
    assert SessionCodec.with_secret("shared").load(cookie) is not None
    assert SessionCodec.with_secret(None).load(cookie) is None


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/ui/controls", "/ui/controls"),
        ("https://evil.example/ui/", "/ui/incidents"),
        ("//evil.example/ui/", "/ui/incidents"),
        ("/ui/\\evil", "/ui/incidents"),
        (None, "/ui/incidents"),
    ],
)
def test_after_sign_in_only_console_paths(target: str | None, expected: str) -> None:
    assert safe_next(target) == expected


def test_only_http_urls_become_links_and_values_read_plainly() -> None:
    assert web_url("https://grafana.example/d/x?a=1") == "https://grafana.example/d/x?a=1"
    for bad in ("javascript:alert(1)", "data:text/html,x", "//host/x", "http://", "http://[x"):
        assert web_url(bad) is None, bad
    assert show_value(None) == "—"
    assert show_value(True) == "true"
    assert show_value(False) == "false"
    assert str(when(None)) == "—"
    naive = str(when(datetime(2026, 1, 2, 3, 4, 5)))
    assert 'datetime="2026-01-02T03:04:05Z"' in naive


def test_the_markdown_renderer_keeps_hostile_text_inert() -> None:
    html = str(
        render(
            "# Title <img src=x onerror=alert(1)>\n"
            "- **bold** and *em* and `<code>`\n"
            "- [bad](javascript:alert(1)) [good](https://e.example/?a=1&b=2)\n"
            "\n"
            "| a | b |\n|---|---|\n| \\| pipe | <b>x</b> |\n"
            "\n```\n<script>alert(1)</script>\n```\n"
            "text \\*not em\\* <i>raw</i>\nsecond line\n"
        )
    )
    assert "<img" not in html
    assert "<script>" not in html
    assert "<i>" not in html
    assert "<b>x" not in html
    assert "<h2>Title &lt;img src=x onerror=alert(1)&gt;</h2>" in html
    assert "<strong>bold</strong>" in html
    assert "<em>em</em>" in html
    assert "<code>&lt;code&gt;</code>" in html
    assert 'href="javascript' not in html
    assert "bad (javascript:alert(1))" in html
    assert '<a href="https://e.example/?a=1&amp;b=2" rel="noopener noreferrer">good</a>' in html
    assert "<td>| pipe</td>" in html
    assert "<pre><code>&lt;script&gt;alert(1)&lt;/script&gt;</code></pre>" in html
    assert "text *not em* &lt;i&gt;raw&lt;/i&gt;<br>second line" in html


def _detail(**fields: Any) -> IncidentDetail:
    base: dict[str, Any] = {
        "id": 1,
        "runbook_id": "svc/tool-failure",
        "status": "mitigating",
        "title": "t",
        "severity": "sev2",
        "service": "svc",
        "group_labels": {},
        "alert_count": 0,
        "firing_count": 0,
        "opened_at": T0,
        "detected_at": T0,
        "acknowledged_at": None,
        "acknowledged_by": None,
        "resolved_at": None,
        "resolved_by": None,
        "reopen_count": 0,
        "phases_seconds": {},
        "alerts": [],
        "timeline": [],
        "mitigations": [],
    }
    return IncidentDetail.model_validate(base | fields)


def _alert(minutes: float) -> AlertOut:
    return AlertOut(
        fingerprint=f"f{minutes}",
        status="firing",
        labels={"a": "<b>"},
        annotations={},
        starts_at=T0 + timedelta(minutes=minutes),
        ends_at=None,
        generator_url=None,
        source="generic",
    )


def test_alerts_per_minute_buckets_and_describes() -> None:
    assert alerts_per_minute([], None, T0) is None
    starts = [(_alert(0).starts_at, 2), (_alert(3).starts_at, 1), (_alert(4).starts_at, 0)]
    chart = alerts_per_minute(starts, None, T0 + timedelta(minutes=5))
    assert chart is not None
    assert chart.title == "Alerts per minute"
    assert chart.rows == [("2026-11-27 03:00 UTC", "2"), ("2026-11-27 03:03 UTC", "1")]
    assert 'role="img"' in chart.svg
    assert "3 alerts from 2026-11-27 03:00" in chart.svg
    long = alerts_per_minute([(_alert(0).starts_at, 1)], T0 + timedelta(days=2), T0)
    assert long is not None
    assert long.title.startswith("Alerts per ")
    assert "minutes" in long.title
    assert "11-29" in long.svg  # dates shown on an incident longer than a day


def test_scorecard_panels_over_the_incidents_life() -> None:
    def snapshot(moment: str, minutes: int, value: float | None) -> ScorecardOut:
        panels = [
            PanelOut(name="Failure <rate>", value=value, unit="%", good="down", scale=100),
            PanelOut(name="Latency", value=1.5, unit="s", good="down"),
        ]
        return ScorecardOut(
            moment=moment,
            label=moment.title(),
            taken_at=T0 + timedelta(minutes=minutes),
            panels=panels,
        )

    detail = _detail(
        scorecards=[
            snapshot("resolve", 30, 0.01),
            snapshot("open", 0, 0.4),
            snapshot("verification", 10, None),
        ]
    )
    charts = scorecard_panels(detail)
    assert [c.title for c in charts] == [
        "Failure <rate> (lower is better)",
        "Latency (lower is better)",
    ]
    failure = charts[0]
    assert [label.split(" (")[0] for label, _ in failure.rows] == [
        "Open",
        "Verification",
        "Resolve",
    ]
    assert [value for _, value in failure.rows] == ["40%", "?", "1%"]
    assert "Failure &lt;rate&gt;" in failure.svg
    assert "<polyline" in failure.svg
    single = scorecard_panels(_detail(scorecards=[snapshot("open", 0, 0.2)]))
    assert "<polyline" not in single[0].svg


async def test_the_trusted_proxy_signs_people_in_and_links_use_the_public_url(
    make_harness: Any,
) -> None:
    config = BallastConfig.model_validate(
        {
            "traces": [
                {"title": "Tempo", "url": "https://grafana.example/explore?service={service}"},
            ],
            "auth": {
                "proxy": {
                    "enabled": True,
                    "trusted_addresses": ["127.0.0.1/32"],
                    "users": {"bob@example.test": "U0OWNER1"},
                }
            },
        }
    )
    h = await make_harness(config=config, public_url="https://ballast.example.com")
    await h.client.post("/webhooks/generic", json={"alerts": [TOOL_ALERT]})
    await h.settle()
    browser = h.anonymous
    browser.headers["x-forwarded-email"] = "bob@example.test"
    page = await browser.get("/ui/incidents/1")
    assert page.status_code == 200
    assert "Signed in as <strong>bob@example.test</strong>" in page.text
    assert "https://ballast.example.com/ui/incidents/1" in page.text
    assert 'href="https://grafana.example/explore?service=svc' in page.text
    cookie = page.headers["set-cookie"]
    assert "secure" in cookie.lower()  # the public URL is https
    # httpx keeps a Secure cookie from plain http, as a browser would: send it by hand.
    session = {"cookie": cookie.split(";")[0]}
    acked = await browser.post(
        "/ui/incidents/1/acknowledge", data={"csrf": csrf_of(page)}, headers=session
    )
    assert acked.status_code == 303
    flashed = {"cookie": acked.headers["set-cookie"].split(";")[0]}
    shown = await browser.get("/ui/incidents/1", headers=flashed)
    assert "Acknowledged." in shown.text
    assert "by U0OWNER1" in shown.text  # the person the proxy named (auth.proxy.users)
    del browser.headers["x-forwarded-email"]
    assert (await browser.get("/ui/incidents")).status_code == 303


async def test_a_session_ends_when_its_token_is_gone(make_harness: Any) -> None:
    h = await make_harness()
    browser = h.anonymous
    await sign_in(browser, ROSTER["reader"].token)
    assert (await browser.get("/ui/runbooks")).status_code == 200
    h.services.auth.config.tokens = [t for t in h.services.auth.config.tokens if t.name != "reader"]
    assert (await browser.get("/ui/runbooks")).status_code == 303
    missing = await browser.get("/ui/incidents/999")
    assert missing.status_code == 303
    await sign_in(browser, ROSTER["operator"].token)
    assert (await browser.get("/ui/incidents/999")).status_code == 404
    assert (await browser.get("/ui/incidents/999/postmortem")).status_code == 404
    assert (await browser.get("/ui/runbooks/no/such")).status_code == 404
    assert (await browser.get("/ui/controls/not-a-key")).status_code == 404


async def test_controls_held_elsewhere_show_their_backend_and_refuse_a_builtin_write(
    make_harness: Any, tmp_path: Any
) -> None:
    broken = tmp_path / "flags.json"
    broken.write_text("{not json", encoding="utf-8")
    config = BallastConfig.model_validate(
        {"services": {"svc-b": {"backend": {"type": "flagd", "path": str(broken)}}}}
    )
    h = await make_harness(config=config)
    await h.services.history.record_change(
        "svc-b.autonomy", None, "supervised", actor="seed", reason="by hand", source="flagd"
    )
    operator = h.anonymous
    await sign_in(operator, ROSTER["operator"].token)
    listing = await operator.get("/ui/controls")
    assert "svc-b.autonomy" in listing.text
    assert "unavailable" in listing.text  # the flag file cannot be read
    page = await operator.get("/ui/controls/svc-b.autonomy")
    assert "flagd" in page.text
    assert "by hand" in page.text
    assert 'name="value"' not in page.text  # no form: its applications read flagd
    refused = await operator.post(
        "/ui/controls/svc-b.autonomy", data={"csrf": csrf_of(page), "value": "full"}
    )
    assert refused.status_code == 409
    assert "live in flagd" in refused.text


def test_dashboards_are_filled_in_from_the_first_alert() -> None:
    from bot.runbooks.schema import Runbook
    from bot.web.incidents import _dashboards

    runbook = Runbook.model_validate(
        {
            "id": "svc/x",
            "title": "x",
            "service": "svc",
            "severity": "sev2",
            "owners": ["U0OWNER1"],
            "match": ['alertname="X"'],
            "symptom": "s",
            "business_impact": "b",
            "dashboards": [
                {"title": "Plain", "url": "https://grafana.example/d/plain"},
                {"title": "Filled", "url": "https://grafana.example/d/x?a={{ labels.a }}"},
                {"title": "Broken", "url": "https://grafana.example/d/x?a={{ labels.a | nope }}"},
            ],
        }
    )
    filled = _dashboards(runbook, _detail(alerts=[_alert(0)]))
    assert filled[0] == {"title": "Plain", "url": "https://grafana.example/d/plain", "note": None}
    assert filled[1]["url"] is not None
    assert filled[1]["url"].startswith("https://grafana.example/d/x?a=")
    assert filled[2]["url"] is None
    assert str(filled[2]["note"]).startswith("link not rendered")
    empty = _dashboards(runbook, _detail())
    assert empty[1]["note"] == "no alert to fill in the link from"
    assert _dashboards(None, _detail()) == []
