"""One alert traced end to end: a real ``ballast serve`` exporting to a real OTLP/HTTP receiver.

The server runs as a user runs it, with only ``OTEL_EXPORTER_OTLP_ENDPOINT`` set; an
Alertmanager webhook opens an incident whose runbook auto-runs two mitigations (a control
write and an ``http_request`` to a loopback target), and Slack is the emulator. The spans the
receiver gets must make one connected story: the webhook's trace (webhook → inbox store), the
engine's batch linked to it, and under the batch the incident, its auto mitigations, the policy
decision, the action, the outgoing HTTP call (whose ``traceparent`` the target received) and
the Slack delivery, with the incident, runbook, mitigation and control key as attributes.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import fresh_database_url
from tests.e2e.processes import BallastServer, wait_until
from tests.principals import BRIDGE, roster_yaml
from tests.slack_emulator.server import DEFAULT_CHANNEL, SlackEmulator
from tests.telemetry.otlp_receiver import OtlpReceiver, ReceivedSpan

pytestmark = pytest.mark.slow

WEBHOOK_TOKEN = "span-tree-webhook-token"
# The sender's own trace (a collector or proxy in front of Ballast may send one).
SENDER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SENDER_SPAN = "00f067aa0ba902b7"
RUNBOOK = """\
id: assistant/tool-failure
title: "{{{{ labels.tool }}}} failing on {{{{ labels.service }}}}"
service: assistant
severity: sev2
owners: ["@oncall"]
match: ['alertname="ToolCallFailureRate"', 'service=~"assistant.*"']
group_by: [service, tool]
symptom: A tool fails.
business_impact: Answers that need the tool are wrong.
mitigations:
  - id: disable-tool
    title: Disable the tool
    action: disable_tool
    params: {{service: "{{{{ labels.service }}}}", tool: "{{{{ labels.tool }}}}"}}
    mode: auto
  - id: pause-lane
    title: Pause the tool's lane at the gateway
    action: http_request
    params:
      method: POST
      url: "{target}/lanes/{{{{ labels.tool }}}}/pause"
      undo: {{method: POST, url: "{target}/lanes/{{{{ labels.tool }}}}/resume"}}
      risk: low
    mode: auto
"""


class Target:
    """The http_request's target: records the headers of every request."""

    def __init__(self) -> None:
        self.received: list[dict[str, str]] = []
        target = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", "0")))
                target.received.append({k.lower(): v for k, v in self.headers.items()})
                self.send_response(200)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with fresh_database_url(request.param, tmp_path, "ballast_otel") as url:
        yield url


def alertmanager_body() -> dict[str, Any]:
    labels = {"alertname": "ToolCallFailureRate", "service": "assistant-eu", "tool": "search"}
    return {
        "version": "4",
        "groupKey": '{}:{alertname="ToolCallFailureRate"}',
        "status": "firing",
        "receiver": "ballast",
        "groupLabels": {"alertname": "ToolCallFailureRate"},
        "commonLabels": labels,
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example",
        "truncatedAlerts": 0,
        "alerts": [
            {
                "status": "firing",
                "labels": labels,
                "annotations": {"summary": "search fails"},
                "startsAt": datetime.now(UTC).isoformat(),
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus.example/graph?g0.expr=up",
                "fingerprint": "a1b2c3d4e5f60718",
            }
        ],
    }


def one(spans: list[ReceivedSpan], name: str) -> ReceivedSpan:
    found = [s for s in spans if s.name == name]
    assert len(found) == 1, (name, sorted(s.name for s in spans))
    return found[0]


def test_one_alert_end_to_end(tmp_path: Path, database_url: str) -> None:
    target = Target()
    runbooks = tmp_path / "runbooks"
    runbooks.mkdir()
    (runbooks / "assistant.yaml").write_text(RUNBOOK.format(target=target.url))
    config = tmp_path / "ballast.yaml"
    config.write_text("http:\n  allowed_hosts: [127.0.0.1]\n" + roster_yaml())
    with OtlpReceiver() as receiver, SlackEmulator() as slack:
        server = BallastServer(
            tmp_path,
            {
                "BALLAST_DATABASE_URL": database_url,
                "BALLAST_RUNBOOKS": str(runbooks),
                "BALLAST_CONFIG": str(config),
                "BALLAST_WEBHOOK_TOKEN": WEBHOOK_TOKEN,
                "BALLAST_LOG_FORMAT": "json",
                "SLACK_BOT_TOKEN": "xoxb-otel",
                "SLACK_SIGNING_SECRET": "otel-signing-secret",
                "BALLAST_SLACK_API_URL": slack.base_url,
                "BALLAST_SLACK_CHANNEL": DEFAULT_CHANNEL.id,
                "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
                "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=test",
                "OTEL_BSP_SCHEDULE_DELAY": "200",
            },
            tmp_path / "ballast.log",
        )
        try:
            server.start()
            assert f"OTLP/HTTP to {receiver.endpoint} as service 'ballast'" in server.logs()
            response = httpx.post(
                f"{server.url}/webhooks/alertmanager",
                json=alertmanager_body(),
                headers={
                    "Authorization": f"Bearer {WEBHOOK_TOKEN}",
                    "traceparent": f"00-{SENDER_TRACE}-{SENDER_SPAN}-01",
                },
                timeout=10,
            )
            assert response.status_code == 200, response.text
            assert response.json()["stored"] == 1

            def settled() -> list[ReceivedSpan] | None:
                # The incident's message and a thread reply per mitigation applied, delivered.
                spans = receiver.snapshot()
                names = [s.name for s in spans]
                return spans if names.count("slack.deliver chat.postMessage") == 3 else None

            wait_until(settled, 60, "the spans of the alert's whole path", interval=0.2)
            incidents = httpx.get(
                f"{server.url}/api/v1/incidents", headers=BRIDGE.headers, timeout=10
            ).json()
        finally:
            server.stop()  # SIGTERM: the SDK flushes what is still queued
            target.close()
    spans = receiver.snapshot()
    [incident] = incidents["incidents"]
    incident_id = incident["id"]
    by_id = {s.span_id: s for s in spans}

    # Every span carries the resource the standard variables describe.
    assert {s.resource["service.name"] for s in spans} == {"ballast"}
    assert {s.resource["deployment.environment"] for s in spans} == {"test"}

    # The webhook's trace: FastAPI's SERVER span continues the sender's traceparent; under it
    # Ballast's webhook span, and the group commit under that.
    request = one(spans, "POST /webhooks/alertmanager")
    assert (request.trace_id, request.parent_span_id) == (SENDER_TRACE, SENDER_SPAN)
    assert request.kind == 2  # SPAN_KIND_SERVER
    assert request.attributes["http.route"] == "/webhooks/alertmanager"
    webhook = one(spans, "webhook alertmanager")
    assert (webhook.trace_id, webhook.parent_span_id) == (SENDER_TRACE, request.span_id)
    assert webhook.attributes["ballast.alert.source"] == "alertmanager"
    assert webhook.attributes["http.response.status_code"] == 200
    store = one(spans, "inbox.store")
    assert (store.trace_id, store.parent_span_id) == (webhook.trace_id, webhook.span_id)
    assert store.attributes["ballast.alerts.stored"] == 1

    # The engine's batch links to the stored context (across the database), then owns the rest.
    batch = next(s for s in spans if s.name == "engine.batch" and s.links)
    assert [(link.trace_id, link.span_id) for link in batch.links] == [
        (store.trace_id, store.span_id)
    ]
    opened = one(spans, "incident opened")
    assert (opened.trace_id, opened.parent_span_id) == (batch.trace_id, batch.span_id)
    assert opened.attributes["ballast.incident.id"] == incident_id
    assert opened.attributes["ballast.runbook.id"] == "assistant/tool-failure"

    def ancestors(span: ReceivedSpan) -> list[str]:
        chain = []
        while span.parent_span_id:
            span = by_id[span.parent_span_id]
            chain.append(span.name)
        return chain

    auto = one(spans, "mitigation.auto")
    assert auto.parent_span_id == opened.span_id
    runs = {s.attributes["ballast.mitigation.id"]: s for s in spans if s.name == "mitigation.run"}
    assert set(runs) == {"disable-tool", "pause-lane"}
    for mitigation, run in runs.items():
        assert run.parent_span_id == auto.span_id
        assert run.attributes["ballast.incident.id"] == incident_id
        assert run.attributes["ballast.runbook.id"] == "assistant/tool-failure"
        assert run.attributes["ballast.execution.state"] == "applied"
        [policy] = [
            s for s in spans if s.name == "policy.decide" and s.parent_span_id == run.span_id
        ]
        assert policy.attributes["ballast.policy.execute"] is True
        assert policy.attributes["ballast.mitigation.id"] == mitigation
    disable = one(spans, "action.apply disable_tool")
    assert disable.parent_span_id == runs["disable-tool"].span_id
    assert disable.attributes["ballast.control.key"] == "assistant-eu.tools.search.enabled"
    assert (
        runs["disable-tool"].attributes["ballast.control.key"]
        == disable.attributes["ballast.control.key"]
    )

    # The backend call: a CLIENT span under the action, whose context the target received.
    pause = one(spans, "action.apply http_request")
    assert pause.parent_span_id == runs["pause-lane"].span_id
    call = one(spans, "POST")
    assert call.parent_span_id == pause.span_id
    assert call.kind == 3  # SPAN_KIND_CLIENT
    assert call.attributes["http.response.status_code"] == 200
    assert call.attributes["url.full"] == f"{target.url}/lanes/search/pause"
    [headers] = target.received
    version, trace_id, parent_id, flags = headers["traceparent"].split("-")
    assert (version, trace_id, parent_id) == ("00", call.trace_id, call.span_id)
    assert int(flags, 16) & 1  # sampled
    assert headers["idempotency-key"]

    # Slack: the message the incident change queued, delivered under the same story.
    posts = [s for s in spans if s.name == "slack.deliver chat.postMessage"]
    assert {p.attributes["ballast.incident.id"] for p in posts} == {incident_id}
    assert {p.attributes["ballast.slack.verdict"] for p in posts} == {"sent"}
    assert {p.trace_id for p in posts} == {batch.trace_id}
    # The incident's message, queued by the announcement of the opening; a thread reply for
    # each mitigation applied, queued by the announcement of its run.
    stories = sorted(ancestors(p) for p in posts)
    assert stories == [
        ["slack.announce", "incident opened", "engine.batch"],
        *[["slack.announce", "mitigation.auto", "incident opened", "engine.batch"]] * 2,
    ]
    # Everything after the webhook is one trace, rooted at the engine's batch.
    after = [s for s in spans if s.trace_id == batch.trace_id]
    assert {ancestors(s)[-1] for s in after if s is not batch} == {"engine.batch"}
