"""Ballast's spans in-process: the SDK's set-up from the standard variables, the helpers that
do nothing while off, outgoing HTTP traced, and one alert's spans through the real app on
SQLite and PostgreSQL (tests/telemetry/test_span_tree.py does the same over OTLP, in a real
``ballast serve``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import INVALID_SPAN

from bot import telemetry
from bot.cli.banner import describe_tracing
from bot.config import BallastConfig, HttpConfig
from bot.telemetry import setup
from bot.telemetry.http import TracingTransport
from tests.telemetry.test_span_tree import RUNBOOK, alertmanager_body


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Ballast's spans on, into memory (the process-wide provider stays the no-op one)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    telemetry.set_tracer(provider.get_tracer("ballast"))
    try:
        yield exporter
    finally:
        telemetry.set_tracer(None)
        provider.shutdown()


def test_off_by_default_and_free() -> None:
    assert not telemetry.enabled()
    with telemetry.span("anything", {"a": 1}) as current:
        assert current is INVALID_SPAN
    assert telemetry.traceparent() is None


@pytest.mark.parametrize(
    ("environ", "endpoint"),
    [
        ({}, None),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, "http://collector:4318"),
        (
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://a:4318",
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://b:4318/v1/traces",
            },
            "http://b:4318/v1/traces",
        ),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "  "}, None),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"}, None),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"}, None),
    ],
)
def test_wanted_reads_the_standard_variables(environ: dict[str, str], endpoint: str | None) -> None:
    assert setup.wanted(environ) == endpoint
    if endpoint is None:
        assert setup.configure(environ) is None


@pytest.mark.parametrize(("service_name", "expected"), [(None, "ballast"), ("chatops", "chatops")])
def test_configure_installs_the_sdk(
    monkeypatch: pytest.MonkeyPatch, service_name: str | None, expected: str
) -> None:
    installed: list[Any] = []
    monkeypatch.setattr(trace, "set_tracer_provider", installed.append)
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=staging")
    if service_name:
        monkeypatch.setenv("OTEL_SERVICE_NAME", service_name)
    endpoint = "https://user:secret@collector.example:4318/otlp"
    tracing = setup.configure({"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint})
    try:
        assert tracing is not None
        assert installed == [tracing.provider]
        assert telemetry.enabled()
        resource = tracing.provider.resource.attributes
        assert resource["service.name"] == expected
        assert resource["deployment.environment"] == "staging"
        shown = describe_tracing(tracing)
        assert shown == f"OTLP/HTTP to https://collector.example:4318/otlp as service {expected!r}"
        assert "secret" not in shown
    finally:
        if tracing is not None:
            tracing.shutdown()
    assert not telemetry.enabled()
    assert describe_tracing(None) == "off (OTEL_EXPORTER_OTLP_ENDPOINT unset)"


def test_stored_context_helpers(spans: InMemorySpanExporter) -> None:
    for bad in (None, "", "00-zz-zz-01", "00-" + "0" * 32 + "-" + "0" * 16 + "-01"):
        assert telemetry.parent_context(bad) is None
        assert telemetry.link(bad) is None
    with telemetry.span("first") as first:
        stored = telemetry.traceparent()
    assert stored is not None
    with telemetry.span("later", {"kept": 1, "dropped": None}, parent=stored) as later:
        pass
    assert later.get_span_context().trace_id == first.get_span_context().trace_id
    [_, finished] = spans.get_finished_spans()
    assert finished.parent is not None
    assert finished.parent.span_id == first.get_span_context().span_id
    assert dict(finished.attributes or {}) == {"kept": 1}
    link = telemetry.link(stored)
    assert link is not None
    assert link.context.span_id == first.get_span_context().span_id


async def test_outgoing_http_carries_the_trace(spans: InMemorySpanExporter) -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(503 if request.url.path == "/down" else 200)

    async with httpx.AsyncClient(transport=TracingTransport(httpx.MockTransport(answer))) as http:
        with telemetry.span("caller"):
            await http.post("https://unleash.example/api/admin/x?token=secret#frag")
            await http.get("http://gateway.example:8080/down")
            await http.get("https://gateway.example/", headers={"traceparent": "mine"})
    finished = {s.name: s for s in spans.get_finished_spans()}
    caller = finished["caller"]
    calls = [s for s in spans.get_finished_spans() if s.kind is trace.SpanKind.CLIENT]
    assert [c.name for c in calls] == ["POST", "GET", "GET"]
    for request, call in zip(seen[:2], calls, strict=False):
        context = call.get_span_context()
        assert request.headers["traceparent"].startswith(
            f"00-{context.trace_id:032x}-{context.span_id:016x}-"
        )
        assert call.parent is not None
        assert call.parent.span_id == caller.get_span_context().span_id
    assert seen[2].headers["traceparent"] == "mine"  # the caller's own is left alone
    assert calls[0].attributes is not None
    assert calls[0].attributes["url.full"] == "https://unleash.example/api/admin/x"
    assert calls[0].attributes["server.port"] == 443
    assert calls[1].attributes is not None
    assert calls[1].attributes["http.response.status_code"] == 503
    assert calls[1].status.status_code is trace.StatusCode.ERROR


async def test_one_alert_in_process(
    spans: InMemorySpanExporter, make_harness: Any, tmp_path: Path
) -> None:
    received: list[httpx.Request] = []

    def gateway(request: httpx.Request) -> httpx.Response:
        received.append(request)
        return httpx.Response(200, text="ok")

    runbooks = tmp_path / "runbooks"
    runbooks.mkdir()
    (runbooks / "assistant.yaml").write_text(RUNBOOK.format(target="http://gateway.test"))
    harness = await make_harness(
        BallastConfig(
            http=HttpConfig(allowed_hosts=["gateway.test"]), teams={"@oncall": ["U0OWNER1"]}
        ),
        http_transport=httpx.MockTransport(gateway),
        runbooks=runbooks,
    )
    refused = await harness.anonymous.post("/webhooks/alertmanager", json=alertmanager_body())
    assert refused.status_code == 401
    [span] = spans.get_finished_spans()
    assert span.name == "webhook alertmanager"
    assert span.attributes is not None
    assert span.attributes["http.response.status_code"] == 401
    spans.clear()
    # The HTTP client was built traced: tracing was on when the services were built.
    response = await harness.client.post(
        "/webhooks/alertmanager", json=alertmanager_body(), headers={"traceparent": "junk"}
    )
    assert response.status_code == 200
    await harness.settle()
    finished: list[ReadableSpan] = list(spans.get_finished_spans())
    named = {s.name: s for s in finished}
    store = named["inbox.store"]
    assert named["webhook alertmanager"].attributes == {
        "ballast.alert.source": "alertmanager",
        "http.response.status_code": 200,
    }
    batch = named["engine.batch"]
    assert [link.context.span_id for link in batch.links] == [store.get_span_context().span_id]
    opened = named["incident opened"]
    assert opened.parent is not None
    assert opened.parent.span_id == batch.get_span_context().span_id
    assert opened.attributes is not None
    assert opened.attributes["ballast.runbook.id"] == "assistant/tool-failure"
    applied = {
        str((s.attributes or {})["ballast.mitigation.id"]): s
        for s in finished
        if s.name.startswith("action.apply ")
    }
    assert set(applied) == {"disable-tool", "pause-lane"}
    assert applied["disable-tool"].attributes is not None
    key = applied["disable-tool"].attributes["ballast.control.key"]
    assert key == "assistant-eu.tools.search.enabled"
    [call] = [s for s in finished if s.name == "POST"]
    assert call.parent is not None
    assert call.parent.span_id == applied["pause-lane"].get_span_context().span_id
    [request] = received
    context = call.get_span_context()
    assert request.headers["traceparent"].startswith(
        f"00-{context.trace_id:032x}-{context.span_id:016x}-"
    )

    # Without Slack credentials the console line stands for the delivery, under the change.
    consoles = [s for s in finished if s.name == "slack.console"]
    parents = [s.parent.span_id for s in consoles if s.parent is not None]
    assert len(parents) == len(consoles) == 3  # the opening, then a line per mitigation run
    assert parents.count(opened.get_span_context().span_id) == 1

    # An undo asked over the API: under FastAPI's request span (none here: no SDK installed
    # process-wide), its own span, and the undo's call carries its trace on.
    spans.clear()
    undo = await harness.client.post(
        "/api/v1/incidents/1/mitigations/pause-lane/undo", json={"actor": "U0OWNER1"}
    )
    assert undo.status_code == 200, undo.text
    undone = {s.name: s for s in spans.get_finished_spans()}
    assert undone["mitigation.undo"].attributes == {
        "ballast.incident.id": 1,
        "ballast.mitigation.id": "pause-lane",
        "ballast.actor": "U0OWNER1",
        "ballast.execution.state": "undone",
    }
    resume = undone["POST"]
    assert received[-1].url.path == "/lanes/search/resume"
    assert received[-1].headers["traceparent"].split("-")[1] == f"{resume.context.trace_id:032x}"

    # A fired timer is its own trace, with the incident.
    from bot.incidents.reminders import schedule_reminder

    spans.clear()
    now = harness.services.clock()
    async with harness.services.db.transaction() as session:
        await schedule_reminder(session, 1, 1, now, now)
    assert await harness.services.timers.tick() == 1
    [timer] = [s for s in spans.get_finished_spans() if s.name == "timer remind"]
    assert timer.parent is None
    assert timer.attributes == {"ballast.incident.id": 1, "ballast.timer.kind": "remind"}
