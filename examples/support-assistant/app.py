"""A simulated LLM support assistant: tools, quality signals, Prometheus metrics, OFREP controls.

No model is called. A background loop plays ``--rate`` conversations per second; each one reads
the assistant's controls from Ballast through the real OpenFeature SDK and OFREP provider, and
records what a real assistant would export. Faults make it degrade on demand::

    python examples/support-assistant/app.py --port 8900 --ballast-url http://127.0.0.1:8080
    curl -X POST 'localhost:8900/faults/tool-failure?tool=web_search'
    curl -X DELETE localhost:8900/faults
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI, HTTPException, Response
from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.contrib.provider.ofrep import OFREPProvider
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

TOOLS = ("web_search", "order_lookup")
# intent -> (share of traffic, tool it needs, high risk: money or account changes)
INTENTS: dict[str, tuple[float, str | None, bool]] = {
    "product_question": (0.45, "web_search", False),
    "order_status": (0.35, "order_lookup", False),
    "refund_request": (0.20, "order_lookup", True),
}
MODEL_COST = {"gpt-4o-2024-08-06": 0.031, "gpt-4o-mini": 0.004}
PROMPT_VERSION = "v12"  # shown in assistant_version_info with the model and the index
RETRIEVAL_INDEX = "helpcenter-20261201-1"
REVIEWERS_PER_SECOND = 5.0


@dataclass
class Faults:
    """What is currently broken."""

    failing_tools: set[str] = field(default_factory=set)
    bad_data_tools: set[str] = field(default_factory=set)  # calls succeed, data is wrong
    groundedness_drop: bool = False
    cost_spike: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "failing_tools": sorted(self.failing_tools),
            "bad_data_tools": sorted(self.bad_data_tools),
            "groundedness_drop": self.groundedness_drop,
            "cost_spike": self.cost_spike,
        }


class Metrics:
    """The signals a scorecard needs, all labelled with the service name."""

    def __init__(self, service: str) -> None:
        self.registry = CollectorRegistry()
        r, s = self.registry, service
        self.requests = Counter(
            "assistant_requests_total", "Conversations turns handled.", ["service"], registry=r
        ).labels(s)
        self.errors = Counter(
            "assistant_request_errors_total",
            "Turns that ended in an error.",
            ["service"],
            registry=r,
        ).labels(s)
        self.latency = Histogram(
            "assistant_request_duration_seconds",
            "Time to answer a turn.",
            ["service"],
            buckets=(0.25, 0.5, 1, 2, 4, 8, 16),
            registry=r,
        ).labels(s)
        self.tool_calls = Counter(
            "assistant_tool_calls_total",
            "Tool calls by tool and outcome (success, failure).",
            ["service", "tool", "outcome"],
            registry=r,
        )
        self.groundedness = Gauge(
            "assistant_groundedness_score",
            "Mean judged groundedness of the last released answers (0-1).",
            ["service"],
            registry=r,
        ).labels(s)
        self.refusals = Counter(
            "assistant_refusals_total",
            "Turns answered with a refusal or handoff.",
            ["service"],
            registry=r,
        ).labels(s)
        self.safety = Counter(
            "assistant_safety_events_total",
            "Guardrail triggers.",
            ["service", "guardrail"],
            registry=r,
        )
        self.cost = Gauge(
            "assistant_cost_per_completed_task_usd",
            "Mean LLM spend per completed task over the last tasks.",
            ["service"],
            registry=r,
        ).labels(s)
        self.review_queue = Gauge(
            "assistant_human_review_queue_length",
            "Answers waiting for an agent.",
            ["service"],
            registry=r,
        ).labels(s)
        self.corrections = Counter(
            "assistant_user_corrections_total",
            "Turns where the user said the answer was wrong.",
            ["service"],
            registry=r,
        ).labels(s)
        self.relevance = Gauge(
            "assistant_relevance_score",
            "Mean judged relevance of the last released answers (0-1).",
            ["service"],
            registry=r,
        ).labels(s)
        self.tokens = Counter(
            "assistant_tokens_total",
            "LLM tokens by kind (prompt, completion).",
            ["service", "kind"],
            registry=r,
        )
        self.versions = Gauge(
            "assistant_version_info",
            "What answered: model, prompt and retrieval index versions (always 1).",
            ["service", "model", "prompt_version", "index"],
            registry=r,
        )
        self.control = Gauge(
            "assistant_control_info",
            "Controls as last read over OFREP (value label, always 1).",
            ["service", "control", "value"],
            registry=r,
        )
        for tool in TOOLS:
            for outcome in ("success", "failure"):
                self.tool_calls.labels(s, tool, outcome)


class Assistant:
    """Plays the traffic and keeps the state the metrics are computed from."""

    def __init__(self, service: str, flags: OpenFeatureClient, rate: float, seed: int) -> None:
        self.service = service
        self.flags = flags
        self.rate = rate
        self.faults = Faults()
        self.metrics = Metrics(service)
        self.controls: dict[str, Any] = {}
        self._random = random.Random(seed)
        # Scores over the last 120 released answers (6 s at 20 turns/s): steady enough that
        # a shift of a few points is a shift, not noise, against the alert's 0.80.
        self._released: collections.deque[float] = collections.deque(maxlen=120)
        self._costs: collections.deque[float] = collections.deque(maxlen=60)
        self._relevant: collections.deque[float] = collections.deque(maxlen=60)
        self._queue = 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="traffic", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def read_controls(self) -> dict[str, Any]:
        """One OFREP evaluation per control; the defaults are what runs without Ballast."""
        key = self.service
        controls: dict[str, Any] = {
            f"tools.{tool}.enabled": self.flags.get_boolean_value(
                f"{key}.tools.{tool}.enabled", True
            )
            for tool in TOOLS
        }
        controls["autonomy"] = self.flags.get_string_value(f"{key}.autonomy", "full")
        controls["model"] = self.flags.get_string_value(f"{key}.model", "gpt-4o-2024-08-06")
        controls["human_review"] = self.flags.get_string_value(f"{key}.human_review", "off")
        if controls != self.controls:
            self.metrics.versions.clear()
            self.metrics.versions.labels(
                self.service, str(controls["model"]), PROMPT_VERSION, RETRIEVAL_INDEX
            ).set(1)
            self.metrics.control.clear()
            for name, value in controls.items():
                self.metrics.control.labels(self.service, name, str(value).lower()).set(1)
        self.controls = controls
        return controls

    def _run(self) -> None:
        interval = 1.0 / self.rate
        next_at = time.monotonic()
        while not self._stop.is_set():
            try:
                self.turn()
            except Exception:  # a demo must keep producing traffic
                self.metrics.errors.inc()
            next_at += interval
            delay = next_at - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)
            else:
                next_at = time.monotonic()

    def turn(self) -> None:
        """One simulated conversation turn."""
        rnd = self._random
        controls = self.read_controls()
        with self._lock:
            faults = Faults(
                set(self.faults.failing_tools),
                set(self.faults.bad_data_tools),
                self.faults.groundedness_drop,
                self.faults.cost_spike,
            )
        intent = rnd.choices(list(INTENTS), [w for w, _, _ in INTENTS.values()])[0]
        _, tool, high_risk = INTENTS[intent]
        m = self.metrics
        m.requests.inc()
        latency = rnd.uniform(0.6, 1.4)
        grounded = rnd.gauss(0.92, 0.03)
        error = refused = False
        tool_allowed = controls["autonomy"] != "off"
        if tool is not None and tool_allowed and controls[f"tools.{tool}.enabled"]:
            latency += rnd.uniform(0.2, 0.8)
            if tool in faults.failing_tools and rnd.random() < 0.7:
                m.tool_calls.labels(self.service, tool, "failure").inc()
                latency += 10.0  # the client timeout
                error = rnd.random() < 0.4
                grounded = rnd.gauss(0.62, 0.08)  # answered from memory after a failed call
            else:
                m.tool_calls.labels(self.service, tool, "success").inc()
                if tool in faults.bad_data_tools:
                    grounded = rnd.gauss(0.2, 0.08)  # cites data the sources contradict
        elif tool is not None:
            # Answer without the tool: hand off more often, a little less grounded.
            refused = rnd.random() < 0.3
            grounded = rnd.gauss(0.86, 0.04)
        if faults.groundedness_drop:
            grounded = rnd.gauss(0.35, 0.08) if high_risk else rnd.gauss(0.84, 0.04)
        if rnd.random() < 0.002:
            m.safety.labels(self.service, rnd.choice(["prompt_injection", "pii_output"])).inc()
        cost = MODEL_COST.get(controls["model"], 0.02) * rnd.uniform(0.7, 1.3)
        if faults.cost_spike:
            cost *= 4.0
        prompt_tokens = rnd.uniform(800, 1600)
        if tool is not None and controls[f"tools.{tool}.enabled"]:
            cost *= 1.3  # tool results make the context longer
            prompt_tokens *= 1.3
        m.tokens.labels(self.service, "prompt").inc(round(prompt_tokens))
        m.tokens.labels(self.service, "completion").inc(round(rnd.uniform(100, 300)))
        # Relevance follows groundedness loosely: an answer from memory drifts off the question.
        relevance = min(1.0, max(0.0, rnd.gauss(0.9, 0.03) - max(0.0, 0.85 - grounded) / 2))
        review = controls["human_review"]
        reviewed = review == "all" or (review == "high_risk" and high_risk)
        with self._lock:
            self._queue = max(0.0, self._queue - REVIEWERS_PER_SECOND / self.rate)
            if reviewed and not error:
                self._queue += 1
                grounded = rnd.gauss(0.95, 0.02)  # an agent fixes it before it goes out
            if error:
                m.errors.inc()
            else:
                self._released.append(min(1.0, max(0.0, grounded)))
                self._costs.append(cost)
                self._relevant.append(relevance)
                if grounded < 0.7 and rnd.random() < 0.5:
                    m.corrections.inc()  # the user pushes back on a wrong answer
            if refused:
                m.refusals.inc()
            if self._released:
                m.groundedness.set(sum(self._released) / len(self._released))
            if self._costs:
                m.cost.set(sum(self._costs) / len(self._costs))
            if self._relevant:
                m.relevance.set(sum(self._relevant) / len(self._relevant))
            m.review_queue.set(round(self._queue))
        m.latency.observe(latency)

    def set_fault(self, **change: Any) -> None:
        with self._lock:
            for name, value in change.items():
                setattr(self.faults, name, value)

    def clear_faults(self) -> None:
        with self._lock:
            self.faults = Faults()


def build_app(service: str, ballast_url: str, rate: float, seed: int = 7) -> FastAPI:
    """The HTTP app: /metrics, /state and the fault endpoints."""
    # Ballast's OFREP is closed by default: send BALLAST_OFREP_TOKEN (or a named reader token)
    # as OFREP's X-API-Key, from the environment, never from the command line.
    token = os.environ.get("BALLAST_OFREP_TOKEN", "")
    headers = {"X-API-Key": token} if token else {}
    api.set_provider(
        OFREPProvider(base_url=ballast_url, headers_factory=lambda: headers, timeout=0.5)
    )
    assistant = Assistant(service, api.get_client(service), rate, seed)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        assistant.start()
        yield
        assistant.stop()
        api.shutdown()

    app = FastAPI(title=f"{service} (simulated)", lifespan=lifespan)
    app.state.assistant = assistant

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(assistant.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/state")
    def state() -> dict[str, Any]:
        return {"controls": assistant.controls, "faults": assistant.faults.as_dict()}

    @app.post("/faults/tool-failure")
    def tool_failure(tool: str = "web_search") -> dict[str, Any]:
        if tool not in TOOLS:
            raise HTTPException(422, f"unknown tool {tool!r}; one of {', '.join(TOOLS)}")
        with assistant._lock:
            assistant.faults.failing_tools.add(tool)
        return assistant.faults.as_dict()

    @app.post("/faults/bad-tool-data")
    def bad_tool_data(tool: str = "order_lookup") -> dict[str, Any]:
        """The tool answers, with wrong data: no tool error, only worse answers."""
        if tool not in TOOLS:
            raise HTTPException(422, f"unknown tool {tool!r}; one of {', '.join(TOOLS)}")
        with assistant._lock:
            assistant.faults.bad_data_tools.add(tool)
        return assistant.faults.as_dict()

    @app.post("/faults/groundedness-drop")
    def groundedness_drop() -> dict[str, Any]:
        assistant.set_fault(groundedness_drop=True)
        return assistant.faults.as_dict()

    @app.post("/faults/cost-spike")
    def cost_spike() -> dict[str, Any]:
        assistant.set_fault(cost_spike=True)
        return assistant.faults.as_dict()

    @app.delete("/faults")
    def clear() -> dict[str, Any]:
        assistant.clear_faults()
        return assistant.faults.as_dict()

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8900)
    parser.add_argument("--ballast-url", default="http://127.0.0.1:8080")
    parser.add_argument("--service", default="support-assistant")
    parser.add_argument("--rate", type=float, default=20.0, help="turns per second")
    args = parser.parse_args()
    app = build_app(args.service, args.ballast_url, args.rate)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
