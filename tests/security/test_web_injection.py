"""Label text in the web console stays text: the incident page and the rendered postmortem
draft of an alert whose labels carry HTML, Markdown links and a ``javascript:`` generator URL
have no element, attribute, link or heading that a benign alert's pages lack.

The pages are parsed with Python's HTML parser; what counts is the markup a browser would
build, not a substring search."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from tests.principals import BRIDGE, ROSTER
from tests.security.test_postmortem_injection import BENIGN, HOSTILE, RUNBOOKS
from tests.web.helpers import sign_in


class Markup(HTMLParser):
    """Every tag with its attributes, and the text, of one page."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parsed(html: str) -> Markup:
    parser = Markup()
    parser.feed(html)
    return parser


def shape(page: Markup) -> dict[str, Any]:
    """The kinds of element, the headings and the link targets' schemes and hosts of a page
    (not table rows: the hostile incident's timeline may have one more entry)."""
    hosts = {
        "/".join(attrs.get("href", "").split("/")[:3])
        for tag, attrs in page.tags
        if tag == "a" and "://" in attrs.get("href", "")
    }
    return {
        "elements": {tag for tag, _ in page.tags},
        "headings": sum(tag in ("h1", "h2", "h3", "h4", "h5", "h6") for tag, _ in page.tags),
        "hosts": {host.replace("http://ballast.test", "self") for host in hosts},
    }


@pytest.fixture
def runbooks_dir() -> Path:
    return RUNBOOKS


async def pages(h: Any, incident: int, labels: dict[str, str], generator: str) -> list[Markup]:
    alert = {
        "labels": {"alertname": "UserCorrectionRateHigh", "service": "support-assistant", **labels},
        "annotations": {"summary": labels["intent"], "description": labels["locale"]},
        "generator_url": generator,
    }
    assert (await h.client.post("/webhooks/generic", json={"alerts": [alert]})).is_success
    await h.settle()
    resolved = await h.client.post(
        f"/api/v1/incidents/{incident}/resolve", json={"actor": "U0OWNER1"}, headers=BRIDGE.headers
    )
    assert resolved.is_success, resolved.text
    browser = h.as_(None)
    await sign_in(browser, ROSTER["reader"].token)
    shown = []
    for path in (
        f"/ui/incidents/{incident}",
        f"/ui/incidents/{incident}/postmortem",
        "/ui/incidents",
    ):
        page = await browser.get(path)
        assert page.status_code == 200, page.text
        shown.append(parsed(page.text))
    return shown


async def test_hostile_labels_add_no_markup_to_the_console(make_harness: Any) -> None:
    h = await make_harness()
    benign = await pages(h, 1, BENIGN, "https://prometheus.example/graph?g0.expr=up")
    hostile = await pages(h, 2, HOSTILE, "javascript:alert(document.cookie)")
    for calm, attacked in zip(benign, hostile, strict=True):
        calm_shape, attacked_shape = shape(calm), shape(attacked)
        # The benign generator URL is a link (to prometheus.example); the hostile one is not.
        calm_shape["hosts"].discard("https://prometheus.example")
        assert attacked_shape == calm_shape
        for tag, attrs in attacked.tags:
            assert tag not in ("script", "img", "iframe", "object") or (
                "src" in attrs and attrs["src"].startswith("/ui/static/")
            ), (tag, attrs)
            assert not any(name.startswith("on") for name in attrs), (tag, attrs)
            assert not attrs.get("href", "").lower().startswith("javascript"), attrs
    # The runbook's dashboard, filled in from the hostile labels, is still a link to its host.
    assert "https://grafana.example.com" in shape(hostile[0])["hosts"]
    text = " ".join(hostile[0].text + hostile[1].text)
    assert "<img src=x onerror=alert(1)>" in text  # shown as written
    assert "[click to re-auth](https://evil.example)" in text
