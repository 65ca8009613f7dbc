"""``traces:`` in ballast.yaml: the incident API's ``traces``, the postmortem, the Slack message."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from pydantic import ValidationError

from bot.config import BallastConfig, TraceLinkConfig
from bot.incidents.read_model import IncidentDetail, TraceLink
from bot.slack.incident_message import render_incident
from bot.slack.view import build_view
from tests.conftest import Clock
from tests.postmortem.scripted import TOKEN

JAEGER = (
    "https://jaeger.example/search?service={service}&tags={{%22tool%22:%22{labels.tool|json}%22}}"
    "&start={start_us}&end={end_us}&lookback=custom"
)
HONEYCOMB = "https://ui.honeycomb.io/t/datasets/{service}?start={start_s}&end={end_s}"
LANGFUSE = "https://langfuse.example/traces?model={labels.model}"

CONFIG = {
    "traces": [
        {"title": "Jaeger", "url": JAEGER, "before": "10m", "after": "5m"},
        {"title": "Honeycomb", "url": HONEYCOMB, "services": ["billing"]},  # not this service
        {"title": "Langfuse", "url": LANGFUSE},  # needs a label the alert lacks
    ]
}
HOSTILE_TOOL = 'web search"&x=1#\u00e9'


def alert(status: str = "firing") -> dict[str, Any]:
    return {
        "labels": {
            "alertname": "ToolFailing",
            "service": "support-assistant",
            "tool": HOSTILE_TOOL,
        },
        "status": status,
        "starts_at": "2026-11-27T03:00:00Z",
    }


async def test_traces_in_the_api_and_the_postmortem(
    make_harness: Any, clock: Clock, tmp_path: Path
) -> None:
    config = BallastConfig.model_validate(CONFIG | {"postmortem": {"folder": str(tmp_path)}})
    h = await make_harness(config=config)
    assert (await h.client.post("/webhooks/generic", json={"alerts": [alert()]})).status_code == 200
    await h.settle()
    [summary] = (await h.client.get("/api/v1/incidents")).json()["incidents"]
    clock.advance(minutes=7)  # an open incident's search ends now

    detail = (await h.client.get(f"/api/v1/incidents/{summary['id']}")).json()

    jaeger, langfuse = detail["traces"]
    assert langfuse == {
        "title": "Langfuse",
        "url": None,
        "note": "no link: the incident has no label 'model' for {labels.model}",
        "trace_id": None,
    }
    assert jaeger["title"] == "Jaeger"
    parts = urlsplit(jaeger["url"])
    assert (parts.netloc, parts.path, parts.fragment) == ("jaeger.example", "/search", "")
    params = parse_qs(parts.query, strict_parsing=True)
    assert params["service"] == ["support-assistant"]
    assert params["tags"] == ['{"tool":"web search\\"&x=1#\u00e9"}']  # still one JSON string
    start = 1_795_748_400_000_000 - 10 * 60 * 1_000_000  # detected 03:00, minus 10 minutes
    assert params["start"] == [str(start)]
    assert params["end"] == [str(1_795_748_400_000_000 + 7 * 60 * 1_000_000)]  # now: 03:07

    response = await h.client.post(
        f"/api/v1/incidents/{summary['id']}/resolve", json={"actor": "U0OWNER2"}, headers=TOKEN
    )
    assert response.status_code == 200, response.text
    clock.advance(hours=2)  # a resolved incident's search ends `after` its resolve
    detail = (await h.client.get(f"/api/v1/incidents/{summary['id']}")).json()
    params = parse_qs(urlsplit(detail["traces"][0]["url"]).query)
    assert params["end"] == [str(1_795_748_400_000_000 + 12 * 60 * 1_000_000)]  # 03:07 + 5m

    markdown = (await h.client.get(f"/api/v1/incidents/{summary['id']}/postmortem")).text
    section = markdown.split("## Traces\n", 1)[1].split("\n## ", 1)[0]
    assert f"- [Jaeger](<{detail['traces'][0]['url']}>)" in section
    assert "- Langfuse: no link: the incident has no label 'model' for {labels.model}" in (section)


async def test_no_traces_configured_means_an_empty_list(make_harness: Any) -> None:
    h = await make_harness()
    await h.client.post("/webhooks/generic", json={"alerts": [alert()]})
    await h.settle()
    [summary] = (await h.client.get("/api/v1/incidents")).json()["incidents"]
    detail = (await h.client.get(f"/api/v1/incidents/{summary['id']}")).json()
    assert detail["traces"] == []


def test_the_slack_message_shows_the_traces() -> None:
    from tests.slack.test_blocks import detail, texts

    incident: IncidentDetail = detail(
        traces=[
            TraceLink(title="Jaeger", url="https://jaeger.example/search?service=a%20b"),
            TraceLink(title="Langfuse", url=None, note="no link: the incident has no label"),
        ]
    )
    message = render_incident(build_view(incident, None))
    [section] = [text for text in texts(message) if text.startswith("*Traces*")]
    assert section == (
        "*Traces*\n• <https://jaeger.example/search?service=a%20b|Jaeger>\n"
        "• Langfuse — _no link: the incident has no label_"
    )


def test_a_trace_url_must_name_the_trace() -> None:
    base = {"title": "Tempo", "url": "https://tempo.example/search?service={service}"}
    with pytest.raises(ValidationError, match=r"trace_url must contain \{trace_id\}"):
        TraceLinkConfig.model_validate(base | {"trace_url": "https://tempo.example/trace/"})
    with pytest.raises(ValidationError, match="scheme 'ftp'"):
        TraceLinkConfig.model_validate(base | {"trace_url": "ftp://tempo.example/{trace_id}"})
    config = TraceLinkConfig.model_validate(
        base | {"trace_url": "https://tempo.example/trace/{trace_id}"}
    )
    assert config.trace_template is not None
    assert (
        config.trace_template.render({"trace_id": "ab/c"}) == "https://tempo.example/trace/ab%2Fc"
    )


def test_exemplar_links_without_a_trace_url_or_with_a_value_missing() -> None:
    from datetime import UTC, datetime

    from bot.incidents.traces import ExemplarTrace, TraceLinks
    from tests.slack.test_blocks import detail

    at = datetime(2026, 11, 27, 3, 1, tzinfo=UTC)
    example = ExemplarTrace("4bf92f3577b34da6a3ce929d0e0e4736", at, "errors_total")
    incident = detail()
    plain = TraceLinks(
        [TraceLinkConfig(title="Tempo", url="https://tempo.example/?s={service}", exemplars=1)]
    )
    links = plain.for_incident(incident, [], at, exemplars=[example, example])
    assert links[1:] == [
        TraceLink(
            title="Trace 4bf92f3577b34da6a3ce929d0e0e4736",
            url=None,
            note="exemplar of errors_total at 2026-11-27 03:01:00 UTC",
            trace_id=example.trace_id,
        )
    ]
    needs_label = TraceLinks(
        [
            TraceLinkConfig(
                title="Tempo",
                url="https://tempo.example/?s={service}",
                trace_url="https://tempo.example/{labels.region}/{trace_id}",
            )
        ]
    )
    [_, link] = needs_label.for_incident(incident, [], at, exemplars=[example])
    assert link.url is None
    assert link.note is not None
    assert link.note.endswith("no link: the incident has no label 'region' for {labels.region}")
    assert TraceLinks().exemplars_wanted("svc") == 0
