"""Inject a fault and follow the closed loop step by step, as each step really happens."""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from bot.demo.stack import DEMO_ONCALL, Stack


@dataclass(frozen=True)
class Scenario:
    """One fault, the alert it should raise and the runbook mitigation that should fix it."""

    name: str
    fault: str  # path on the support assistant, POSTed
    alertname: str
    alert_labels: dict[str, str]
    runbook: str
    mitigation: str
    control_key: str
    control_value: Any
    recovery_query: str  # PromQL: true (non-empty) once the signal is healthy again
    recovery_text: str
    # An AI change a pipeline records just before the fault (POST /api/v1/changes): the
    # incident and its postmortem show it among the recent changes (docs/changes.md).
    change: dict[str, str] | None = None
    # Verdicts the loop waits for, in order: (mitigation id, verdict) from the runbook's
    # verify: checks against the demo's Prometheus (docs/scorecards.md).
    verdicts: tuple[tuple[str, str], ...] = ()
    # The rung the mitigation ladder moves to when ``mitigation`` does not help; the demo's
    # on-call approves it if it waits for an owner, as they would in Slack.
    ladder_to: str | None = None


SCENARIOS: dict[str, Scenario] = {
    "tool-failure": Scenario(
        name="tool-failure",
        fault="/faults/tool-failure?tool=web_search",
        alertname="ToolCallFailureRate",
        alert_labels={"tool": "web_search"},
        runbook="support-assistant/tool-failure-spike",
        mitigation="disable-tool",
        control_key="support-assistant.tools.web_search.enabled",
        control_value=False,
        recovery_query=(
            'sum(rate(assistant_tool_calls_total{tool="web_search",outcome="failure"}[3s])) == 0'
        ),
        recovery_text="web_search failures stopped (0/s over 3s)",
        verdicts=(("disable-tool", "recovered"),),
    ),
    "groundedness": Scenario(
        name="groundedness",
        fault="/faults/groundedness-drop",
        alertname="GroundednessLow",
        alert_labels={},
        runbook="support-assistant/groundedness-drop",
        mitigation="review-high-risk",
        control_key="support-assistant.human_review",
        control_value="high_risk",
        recovery_query="avg(assistant_groundedness_score) >= 0.8",
        recovery_text="groundedness of released answers back at or above 0.80",
        change={
            "service": "support-assistant",
            "kind": "retrieval_index",
            "version": "kb-2026-12-03",
            "previous": "kb-2026-11-28",
            "by": "index-pipeline",
            "note": "nightly rebuild with the new chunker",
        },
    ),
    # The first move does not help: review holds the high-risk answers, but order_lookup
    # feeds wrong order states into every order answer. The verdict is not_recovered, the
    # ladder asks for the next rung (turn order_lookup off), the on-call approves, recovered.
    "ladder": Scenario(
        name="ladder",
        fault="/faults/bad-tool-data?tool=order_lookup",
        alertname="GroundednessLow",
        alert_labels={},
        runbook="support-assistant/groundedness-drop",
        mitigation="review-high-risk",
        control_key="support-assistant.tools.order_lookup.enabled",
        control_value=False,
        recovery_query="avg(assistant_groundedness_score) >= 0.8",
        recovery_text="groundedness of released answers back at or above 0.80",
        verdicts=(("review-high-risk", "not_recovered"), ("disable-order-lookup", "recovered")),
        ladder_to="disable-order-lookup",
    ),
}


@dataclass
class StepResult:
    """When a step was seen, in seconds since the fault was injected, and what was seen."""

    name: str
    title: str
    elapsed: float
    detail: str


@dataclass
class LoopResult:
    scenario: str
    incident_id: int | None = None
    steps: list[StepResult] = field(default_factory=list)
    timeline: list[dict[str, Any]] = field(default_factory=list)
    postmortem: Path | None = None
    injected_at: datetime | None = None
    runbook_id: str | None = None  # the runbook Ballast matched, as the incident says
    mitigation: str | None = None  # "<id> (<action>): <title>" of the mitigation it applied
    traces: list[dict[str, Any]] = field(default_factory=list)  # the incident's trace links
    changes: list[dict[str, Any]] = field(default_factory=list)  # its recent AI changes
    narration: list[str] = field(default_factory=list)  # verdicts and ladder steps, in order

    def at(self, name: str) -> float:
        return next(step.elapsed for step in self.steps if step.name == name)

    def phases(self) -> dict[str, float]:
        """fault → alert → mitigation applied → recovered, and the total to resolved."""
        return {
            "fault_to_alert": self.at("alert_fired"),
            "alert_to_mitigation": self.at("mitigation_applied") - self.at("alert_fired"),
            "mitigation_to_recovery": self.at("metric_recovered") - self.at("mitigation_applied"),
            "total_to_resolved": self.at("incident_resolved"),
        }


STEPS: list[tuple[str, str]] = [
    ("alert_fired", "Alert fired (Prometheus)"),
    ("incident_opened", "Incident opened (Ballast)"),
    ("mitigation_applied", "Mitigation applied (timeline)"),
    ("control_changed", "Control value changed (OFREP)"),
    ("metric_recovered", "Metric recovered (Prometheus)"),
    ("alert_resolved", "Alert resolved (Prometheus → Alertmanager → Ballast)"),
    ("incident_resolved", "Incident resolved (Ballast)"),
    ("postmortem_written", "Postmortem written"),
]


def steps_of(scenario: Scenario) -> list[tuple[str, str]]:
    """The steps to wait for: the fixed loop, plus the scenario's verdicts and ladder."""
    steps = STEPS[:3]
    if scenario.ladder_to is not None:
        first = scenario.mitigation
        steps += [
            (f"verified:{first}", f"Verdict on {first} (Prometheus)"),
            ("ladder_moved", "Ladder moved on (the runbook's on_not_recovered)"),
            ("ladder_applied", f"Next rung applied: {scenario.ladder_to}"),
        ]
    steps.append(STEPS[3])
    waited = {name for name, _ in steps}
    for mitigation, _ in scenario.verdicts:
        if f"verified:{mitigation}" not in waited:
            steps.append((f"verified:{mitigation}", f"Verdict on {mitigation} (Prometheus)"))
    return steps + STEPS[4:]


StepCallback = Callable[[str, str], None]


class LoopTimeout(AssertionError):
    """A step did not happen in time."""


class LoopFailed(LoopTimeout):
    """A step happened, but not as the scenario expects (another verdict, another rung)."""


def run_loop(
    stack: Stack,
    scenario: Scenario,
    *,
    timeout: float = 90.0,
    on_wait: StepCallback | None = None,
    on_done: Callable[[StepResult], None] | None = None,
) -> LoopResult:
    """Inject the fault, then wait for each step in order; raise :class:`LoopTimeout`."""
    client = httpx.Client(timeout=5, headers=stack.reader_headers)
    result = LoopResult(scenario.name)
    deadline = time.monotonic() + timeout
    state: dict[str, Any] = {}

    def prom_alert_firing() -> bool:
        body = client.get(f"{stack.prometheus}/api/v1/alerts").json()
        return any(
            _is_ours(a["labels"], scenario) and a["state"] == "firing"
            for a in body["data"]["alerts"]
        )

    def incident() -> dict[str, Any] | None:
        found = client.get(
            f"{stack.ballast}/api/v1/incidents", params={"runbook": scenario.runbook}
        ).json()["incidents"]
        return found[0] if found else None

    def detail() -> dict[str, Any]:
        body: dict[str, Any] = client.get(
            f"{stack.ballast}/api/v1/incidents/{result.incident_id}"
        ).json()
        result.timeline = body["timeline"]
        result.traces = body.get("traces", [])
        result.changes = [c for c in body.get("changes", []) if c["source"] != "control"]
        return body

    def checks() -> dict[str, Callable[[], str | None]]:
        def alert_fired() -> str | None:
            return f"{scenario.alertname} firing" if prom_alert_firing() else None

        def incident_opened() -> str | None:
            found = incident()
            if found is None:
                return None
            result.incident_id = int(found["id"])
            result.runbook_id = found["runbook_id"]
            return f"#{found['id']} {found['title']}, runbook {found['runbook_id']}"

        def mitigation_applied() -> str | None:
            body = detail()
            for entry in body["timeline"]:
                details = entry["details"]
                if entry["kind"] == "mitigation_applied" and (
                    details.get("mitigation_id") == scenario.mitigation
                ):
                    result.mitigation = describe_mitigation(body, scenario.mitigation)
                    return f"{result.mitigation}: {entry['summary']}"
            return None

        def control_changed() -> str | None:
            response = client.post(
                f"{stack.ballast}/ofrep/v1/evaluate/flags/{scenario.control_key}", json={}
            )
            if response.status_code != 200:
                return None
            value = response.json()["value"]
            if value != scenario.control_value:
                return None
            seen = client.get(f"{stack.assistant}/state").json()["controls"]
            name = scenario.control_key.split(".", 1)[1]
            if seen.get(name) != scenario.control_value:
                return None
            return f"{scenario.control_key} = {value!r}, read by the assistant"

        def metric_recovered() -> str | None:
            body = client.get(
                f"{stack.prometheus}/api/v1/query", params={"query": scenario.recovery_query}
            ).json()
            return scenario.recovery_text if body["data"]["result"] else None

        def alert_resolved() -> str | None:
            if prom_alert_firing():
                return None
            kinds = [entry["kind"] for entry in detail()["timeline"]]
            return "alert_resolved in the timeline" if "alert_resolved" in kinds else None

        def incident_resolved() -> str | None:
            body = detail()
            return f"status {body['status']}" if body["status"] == "resolved" else None

        def postmortem_written() -> str | None:
            response = client.get(
                f"{stack.ballast}/api/v1/incidents/{result.incident_id}/postmortem",
                params={"format": "json"},
            )
            latest = response.json().get("latest") if response.status_code == 200 else None
            if not latest or not latest.get("path") or not Path(latest["path"]).is_file():
                return None
            result.postmortem = Path(latest["path"])
            return str(result.postmortem)

        def verified(mitigation: str) -> Callable[[], str | None]:
            def check() -> str | None:
                entry = _entry(detail()["timeline"], "mitigation_verified", mitigation)
                if entry is None:
                    return None
                expected = dict(scenario.verdicts).get(mitigation)
                if expected is not None and entry["details"]["verdict"] != expected:
                    raise LoopFailed(f"{mitigation}: {entry['summary']}; expected {expected}")
                return narrate_verdict(result.timeline, entry)

            return check

        def ladder_moved() -> str | None:
            entry = _entry(detail()["timeline"], "mitigation_ladder", scenario.mitigation)
            if entry is None:
                return None
            if entry["details"]["target"] != scenario.ladder_to:
                raise LoopFailed(f"the ladder went elsewhere: {entry['summary']}")
            return f"ladder: {entry['summary']}"

        def ladder_applied() -> str | None:
            body = detail()
            target = str(scenario.ladder_to)
            if _entry(body["timeline"], "mitigation_applied", target) is not None:
                approved = f", approved by {state['approved']}" if "approved" in state else ""
                return f"{describe_mitigation(body, target)}{approved}"
            waiting = [
                m
                for m in body["mitigations"]
                if m["id"] == target and m["state"] == "awaiting_approval"
            ]
            if waiting and "approved" not in state:
                state["approved"] = DEMO_ONCALL  # once: a refusal is a failure, not a retry
                response = client.post(
                    f"{stack.ballast}/api/v1/incidents/{result.incident_id}/mitigations/"
                    f"{target}/run",
                    json={"reason": "the ladder asked for it; the demo's on-call approves"},
                    headers=stack.oncall_headers,
                )
                if response.status_code >= 300:
                    raise LoopFailed(f"approving {target}: {response.status_code} {response.text}")
            return None

        return {
            **{f"verified:{m}": verified(m) for m, _ in scenario.verdicts},
            "ladder_moved": ladder_moved,
            "ladder_applied": ladder_applied,
            "alert_fired": alert_fired,
            "incident_opened": incident_opened,
            "mitigation_applied": mitigation_applied,
            "control_changed": control_changed,
            "metric_recovered": metric_recovered,
            "alert_resolved": alert_resolved,
            "incident_resolved": incident_resolved,
            "postmortem_written": postmortem_written,
        }

    try:
        steps = checks()
        if scenario.change is not None:  # the pipeline ships it, then things go wrong
            client.post(
                f"{stack.ballast}/api/v1/changes",
                json={**scenario.change, "external_id": f"demo-{uuid.uuid4().hex[:12]}"},
                headers=stack.pipeline_headers,
            ).raise_for_status()
        result.injected_at = datetime.now().astimezone()
        started = time.monotonic()
        client.post(f"{stack.assistant}{scenario.fault}").raise_for_status()
        for name, title in steps_of(scenario):
            if on_wait is not None:
                on_wait(name, title)
            while True:
                stack.check()
                try:
                    seen = steps[name]()
                except (httpx.HTTPError, KeyError, ValueError) as err:
                    seen = None
                    state["last_error"] = err
                if seen is not None:
                    step = StepResult(name, title, time.monotonic() - started, seen)
                    result.steps.append(step)
                    if on_done is not None:
                        on_done(step)
                    break
                if time.monotonic() > deadline:
                    raise LoopTimeout(
                        f"{scenario.name}: no '{title}' within {timeout:.0f}s "
                        f"(last error: {state.get('last_error')!r}; logs in {stack.workdir})"
                    )
                time.sleep(0.1)
        if result.incident_id is not None:
            detail()
            result.narration = narration(result.timeline)
        return result
    finally:
        client.close()


def _entry(timeline: list[dict[str, Any]], kind: str, mitigation: str) -> dict[str, Any] | None:
    """The first timeline entry of ``kind`` about ``mitigation``."""
    return next(
        (
            e
            for e in timeline
            if e["kind"] == kind and e["details"].get("mitigation_id") == mitigation
        ),
        None,
    )


def narration(timeline: list[dict[str, Any]]) -> list[str]:
    """Every verdict and ladder step of the incident, one line each, in order."""
    lines = []
    for entry in timeline:
        if entry["kind"] == "mitigation_verified":
            lines.append(narrate_verdict(timeline, entry))
        elif entry["kind"] == "mitigation_ladder":
            lines.append(f"ladder: {entry['summary']}")
    return lines


def narrate_verdict(timeline: list[dict[str, Any]], verified: dict[str, Any]) -> str:
    """``web_search disabled → failed calls/s 6.2 → 0 in 4 s: recovered``: what the
    mitigation did, each check's value before and after, how long it took, the verdict."""
    details = verified["details"]
    mitigation = details["mitigation_id"]
    applied = [  # the application this verdict is about: the last one before it
        entry
        for entry in timeline
        if entry["kind"] == "mitigation_applied"
        and entry["details"].get("mitigation_id") == mitigation
        and entry["at"] <= verified["at"]
    ]
    did = what_it_did(applied[-1]["details"]) if applied else mitigation
    values = "; ".join(
        f"{check['name']} {_number(check['before'])} → {_number(check['after'])}"
        for check in details["values"]
    )
    took = datetime.fromisoformat(details["checked_at"]) - datetime.fromisoformat(
        details["applied_at"]
    )
    return f"{did} → {values} in {took.total_seconds():.0f} s: {details['verdict']}"


def what_it_did(applied: dict[str, Any]) -> str:
    """``web_search disabled``, ``human_review → high_risk``: the control it changed."""
    key, after = applied.get("key"), applied.get("after")
    if not key:
        return str(applied.get("mitigation_id"))
    parts = str(key).split(".")
    if len(parts) >= 3 and parts[-3] == "tools" and parts[-1] == "enabled":
        return f"{parts[-2]} {'enabled' if after else 'disabled'}"
    return f"{parts[-1]} → {after}"


def _number(value: float | None) -> str:
    return "?" if value is None else f"{value:.3g}"


def _is_ours(labels: dict[str, str], scenario: Scenario) -> bool:
    if labels.get("alertname") != scenario.alertname:
        return False
    return all(labels.get(k) == v for k, v in scenario.alert_labels.items())


def describe_mitigation(incident: dict[str, Any], mitigation_id: str) -> str:
    """``disable-tool (disable_tool): Disable the failing tool``, from the incident's detail."""
    for mitigation in incident.get("mitigations", []):
        if mitigation["id"] == mitigation_id:
            return f"{mitigation_id} ({mitigation['action']}): {mitigation['title']}"
    return mitigation_id


def format_seconds(seconds: float) -> str:
    """``0.43s``, ``12.4s``: sub-second steps must not print as ``0s``."""
    return f"{seconds:.2f}s" if seconds < 10 else f"{seconds:.1f}s"


def keep_postmortem(draft: Path | None, folder: Path) -> Path | None:
    """Copy the draft into ``folder`` (never over another file); None if there is none or the
    folder cannot take it."""
    if draft is None or not draft.is_file():
        return None
    target = folder / draft.name
    number = 1
    while target.exists():
        number += 1
        target = folder / f"{draft.stem}-{number}{draft.suffix}"
    try:
        shutil.copyfile(draft, target)
    except OSError:
        return None
    return target
