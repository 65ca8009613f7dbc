"""Example traces of the failing requests, from a real Prometheus's exemplars, on SQLite and
PostgreSQL: the alert's PromQL (``g0.expr`` of its generatorURL) asked at
``/api/v1/query_exemplars`` of a Prometheus with exemplar storage, scraping an OpenMetrics
target whose counter carries trace ids; the trace ids in the incident API's ``traces``, the
Slack message and the postmortem, linked through ``trace_url``; the search link filled with the
live model, prompt and index versions from the change log. A Prometheus that is down gives no
examples and holds nothing up."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.openmetrics.exposition import CONTENT_TYPE_LATEST, generate_latest

from bot.config import BallastConfig
from bot.demo.stack import Process, free_port
from bot.incidents.read_model import IncidentDetail
from bot.slack.incident_message import render_incident
from bot.slack.view import build_view
from bot.verification.exemplars import promql_of
from tests.conftest import need_binary

TRACE_IDS = ("4bf92f3577b34da6a3ce929d0e0e4736", "0af7651916cd43dd8448eb211c80319c")
METRIC = "assistant_tool_errors"


class OpenMetricsTarget:
    """A counter with exemplars, served in the OpenMetrics format (exemplars need it)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.errors = Counter(METRIC, "Failed tool calls.", ["tool"], registry=self.registry)
        target = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = generate_latest(target.registry)
                self.send_response(200)
                self.send_header("Content-Type", CONTENT_TYPE_LATEST)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def prometheus_with_exemplars(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, OpenMetricsTarget]]:
    binary = need_binary("prometheus")
    workdir = tmp_path_factory.mktemp("prometheus-exemplars")
    target = OpenMetricsTarget()
    port = free_port()
    config = workdir / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        "  - job_name: assistant\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{target.port}']}}]\n",
        encoding="utf-8",
    )
    process = Process(
        "prometheus",
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--enable-feature=exemplar-storage",
        ],
        workdir / "prometheus.log",
    )
    process.start()
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            process.check()
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "Prometheus not ready in 30 s"
            time.sleep(0.1)
        yield url, target
    finally:
        process.stop()
        target.close()


def stored_exemplars(url: str, expr: str) -> set[str]:
    now = time.time()
    body = httpx.get(
        f"{url}/api/v1/query_exemplars",
        params={"query": expr, "start": now - 600, "end": now + 5},
        timeout=2,
    ).json()
    return {e["labels"]["trace_id"] for series in body["data"] for e in series["exemplars"]}


def alertmanager_alert(tool: str, expr: str) -> dict[str, Any]:
    labels = {"alertname": "ToolFailing", "service": "svc", "tool": tool}
    return {
        "version": "4",
        "groupKey": f'{{}}:{{tool="{tool}"}}',
        "status": "firing",
        "receiver": "ballast",
        "groupLabels": {"tool": tool},
        "commonLabels": labels,
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example",
        "alerts": [
            {
                "status": "firing",
                "labels": labels,
                "annotations": {},
                "startsAt": datetime.now(UTC).isoformat(),
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": f"http://prometheus.example/graph?g0.expr={quote(expr)}&g0.tab=1",
                "fingerprint": uuid.uuid4().hex[:16],
            }
        ],
    }


def traces_config(prometheus_url: str) -> BallastConfig:
    return BallastConfig.model_validate(
        {
            "teams": {"@oncall": ["U0OWNER1"]},
            "prometheus": {"url": prometheus_url, "timeout": 2},
            "traces": [
                {
                    "title": "Tempo",
                    "url": "https://tempo.example/search?service={service}&model={model}"
                    "&prompt={prompt_version}&index={retrieval_index}&start={start_s}",
                    "trace_url": "https://tempo.example/trace/{trace_id}",
                    "exemplars": 3,
                }
            ],
        }
    )


def test_promql_of_a_generator_url() -> None:
    assert promql_of("http://p:9090/graph?g0.expr=rate%28x%5B5m%5D%29+%3E+0&g0.tab=1") == (
        "rate(x[5m]) > 0"
    )
    for nothing in (None, "", "http://grafana/alerting/list", "http://p/graph?g0.expr=+"):
        assert promql_of(nothing) is None


async def test_exemplar_traces_in_api_slack_and_postmortem(
    make_harness: Any, prometheus_with_exemplars: tuple[str, OpenMetricsTarget]
) -> None:
    url, target = prometheus_with_exemplars
    tool = f"t{uuid.uuid4().hex[:8]}"
    expr = f'rate({METRIC}_total{{tool="{tool}"}}[1m]) > 0'
    # One exemplar per scrape (the series' latest): each waits until Prometheus has it.
    for count, trace_id in enumerate(TRACE_IDS, 1):
        target.errors.labels(tool).inc(exemplar={"trace_id": trace_id})
        deadline = time.monotonic() + 30
        while stored_exemplars(url, expr) != set(TRACE_IDS[:count]):
            assert time.monotonic() < deadline, stored_exemplars(url, expr)
            time.sleep(0.3)

    h = await make_harness(config=traces_config(url))
    for kind, version in (
        ("model", "gpt-x-2026-11"),
        ("prompt", "p-41"),
        ("retrieval_index", "kb-12"),
    ):
        change = {"service": "svc", "kind": kind, "version": version}
        assert (await h.client.post("/api/v1/changes", json=change)).status_code in (200, 201)
    response = await h.client.post("/webhooks/alertmanager", json=alertmanager_alert(tool, expr))
    assert response.status_code == 200, response.text
    await h.settle()
    await h.services.exemplars.drain()
    body = (await h.client.get("/api/v1/incidents/1")).json()

    search, *examples = body["traces"]
    assert search["url"].startswith(
        "https://tempo.example/search?service=svc&model=gpt-x-2026-11&prompt=p-41&index=kb-12&"
    )
    assert [e["trace_id"] for e in examples] == list(reversed(TRACE_IDS))  # newest first
    for example in examples:
        assert example["url"] == f"https://tempo.example/trace/{example['trace_id']}"
        assert f"exemplar of {METRIC}_total at " in example["title"]
    [entry] = [e for e in body["timeline"] if e["kind"] == "exemplars"]
    assert entry["details"]["expr"] == expr
    # Recorded once per moment, whatever replays it.
    assert await h.services.exemplars.record(1, "open") == 0

    message = str(
        render_incident(build_view(IncidentDetail.model_validate(body), None)).as_kwargs()
    )
    for trace_id in TRACE_IDS:
        assert f"https://tempo.example/trace/{trace_id}" in message

    draft = await h.client.get(
        "/api/v1/incidents/1/postmortem", headers={"accept": "text/markdown"}
    )
    assert draft.status_code == 200, draft.text
    for trace_id in TRACE_IDS:
        assert f"https://tempo.example/trace/{trace_id}" in draft.text


async def test_a_down_prometheus_gives_no_examples(make_harness: Any) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    h = await make_harness(config=traces_config(down))
    response = await h.client.post(
        "/webhooks/alertmanager", json=alertmanager_alert("search", f"{METRIC}_total > 0")
    )
    assert response.status_code == 200
    await h.settle()
    await h.services.exemplars.drain()
    assert await h.services.exemplars.record(1, "open") == 0
    body = (await h.client.get("/api/v1/incidents/1")).json()
    assert [t["trace_id"] for t in body["traces"]] == [None]
    assert "model" in body["traces"][0]["note"]  # no change log: the search link says why
    assert all(e["kind"] != "exemplars" for e in body["timeline"])


async def test_exemplar_answers_are_read_strictly() -> None:
    """Only well-formed trace ids with a timestamp are kept; a wrong shape is a reason."""
    from bot.config import PrometheusConfig
    from bot.verification.prometheus import PrometheusClient

    good = "4BF92F3577B34DA6A3CE929D0E0E4736"
    answers: list[Any] = [
        [
            {
                "seriesLabels": {"__name__": "x_total"},
                "exemplars": [
                    {"labels": {"traceID": good}, "value": "1", "timestamp": 1795748400.5},
                    {"labels": {"trace_id": "abc"}, "value": "1", "timestamp": 1},  # too short
                    {"labels": {"trace_id": "<script>" * 4}, "timestamp": 1},
                    {"labels": {"span_id": "00f067aa0ba902b7"}, "timestamp": 1},  # no trace
                    {"labels": {"traceId": "00f067aa0ba902b7"}, "timestamp": "soon"},
                    {"labels": {"trace-id": "00f067aa0ba902b7"}, "timestamp": 2, "value": "x"},
                    "not an exemplar",
                ],
            }
        ],
        {"resultType": "vector"},
        [{"seriesLabels": {}}],
    ]

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"status": "success", "data": answers.pop(0)})

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
        client = PrometheusClient(PrometheusConfig(url="http://p.test"), http, {})
        start, end = datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)
        reading = await client.query_exemplars("x_total", start, end)
        assert reading.reason is None
        assert [(e.trace_id, e.value) for e in reading.exemplars] == [
            (good.lower(), 1.0),
            ("00f067aa0ba902b7", None),
        ]
        assert reading.exemplars[0].series == {"__name__": "x_total"}
        wrong = await client.query_exemplars("x_total", start, end)
        assert wrong.exemplars == []
        assert wrong.reason == "expected a list of exemplars, got dict"
        shapeless = await client.query_exemplars("x_total", start, end)
        assert shapeless.reason == "an exemplar series without exemplars"
