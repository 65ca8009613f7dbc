"""Label text in a postmortem draft stays text: no link, image, HTML or heading it did not have.

The draft is made the real way (alert → incident → resolve → ``GET …/postmortem``) with labels
carrying Markdown and HTML, then parsed with markdown-it-py (CommonMark plus GFM tables and
strikethrough). The document must have exactly the headings of a benign draft and no link,
image or HTML at all, and the hostile text must still be there, shown as written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from markdown_it import MarkdownIt
from markdown_it.token import Token

from bot.postmortem.markdown import code, md
from tests.principals import BRIDGE

RUNBOOKS = Path(__file__).resolve().parent / "runbooks"
TOKEN = BRIDGE.headers  # may name the acting person in the body
HOSTILE = {
    "locale": "x](https://evil.example/login) <img src=x onerror=alert(1)> | col",
    "intent": "refund\n\n# Pwned\n\n[click to re-auth](https://evil.example) ![i](https://e.x/i.png)",
}
BENIGN = {"locale": "de-DE", "intent": "refund_policy"}


def parse(markdown: str) -> list[Token]:
    parser = MarkdownIt("commonmark").enable(["table", "strikethrough"])
    tokens = parser.parse(markdown)
    flat: list[Token] = []
    for token in tokens:
        flat.append(token)
        flat.extend(token.children or [])
    return flat


def headings(tokens: list[Token]) -> list[str]:
    return [
        tokens[i + 1].content.split(" ")[0] + f"/{t.tag}"
        for i, t in enumerate(tokens)
        if t.type == "heading_open"
    ]


@pytest.fixture
def runbooks_dir() -> Path:
    return RUNBOOKS


async def draft(h: Any, incident: int, labels: dict[str, str]) -> str:
    alert = {
        "labels": {
            "alertname": "UserCorrectionRateHigh",
            "service": "support-assistant",
            **labels,
        },
        "annotations": {"summary": labels["intent"]},
    }
    assert (await h.client.post("/webhooks/generic", json={"alerts": [alert]})).is_success
    await h.settle()
    response = await h.client.post(
        f"/api/v1/incidents/{incident}/resolve", json={"actor": "U0OWNER1"}, headers=TOKEN
    )
    assert response.is_success, response.text
    markdown = await h.client.get(f"/api/v1/incidents/{incident}/postmortem", headers=TOKEN)
    assert markdown.status_code == 200, markdown.text
    return markdown.text


async def test_hostile_labels_add_no_link_html_or_heading(make_harness: Any) -> None:
    h = await make_harness(api_token="api-token-1")
    benign = parse(await draft(h, 1, BENIGN))
    hostile = parse(await draft(h, 2, HOSTILE))

    kinds = {t.type for t in hostile}
    assert not kinds & {"link_open", "image", "html_inline", "html_block", "s_open"}, kinds
    assert headings(hostile) == headings(benign)
    # The text is still there, as written (the parser un-escapes it back).
    shown = " ".join(t.content for t in hostile if t.type in ("text", "code_inline"))
    assert "[click to re-auth](https://evil.example)" in shown
    assert "<img src=x onerror=alert(1)>" in shown
    # Tables keep their columns: a `|` in a label splits no cell.
    rows = [t for t in hostile if t.type == "tr_open"]
    assert rows
    widths = set()
    for index, token in enumerate(hostile):
        if token.type == "tr_open":
            end = next(i for i in range(index, len(hostile)) if hostile[i].type == "tr_close")
            cells = [t for t in hostile[index:end] if t.type in ("td_open", "th_open")]
            widths.add(len(cells))
    assert widths <= {3, 4}, widths


def test_the_filters_themselves() -> None:
    tokens = parse(f"- {md('# Pwned [x](https://e.x) <b>hi</b> www.e.x _u_ *s*')}")
    assert not {t.type for t in tokens} & {"link_open", "html_inline", "em_open", "heading_open"}
    [inline] = [t for t in tokens if t.type == "inline"]
    assert inline.children is not None
    assert "".join(c.content for c in inline.children) == (
        "# Pwned [x](https://e.x) <b>hi</b> www.e.x _u_ *s*"
    )
    assert code("a `b` c") == "``a `b` c``"
    assert [t.content for t in parse(code("a `b` c")) if t.type == "code_inline"] == ["a `b` c"]
