"""The closed loop with real parts: Prometheus → Alertmanager → Ballast → the AI app recovers.

The same stack and loop as ``ballast demo``: a simulated support assistant reading its controls
over OFREP, Debian's ``prometheus`` and ``prometheus-alertmanager``, ``ballast serve`` on SQLite
with the repository's runbooks. Each scenario must close within ``LOOP_TIMEOUT`` seconds.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.demo import SCENARIOS, Stack, run_loop
from tests.conftest import need_binary

pytestmark = [pytest.mark.alertmanager, pytest.mark.slow]

LOOP_TIMEOUT = 90.0


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    need_binary("prometheus")
    need_binary("prometheus-alertmanager")
    stack = Stack(tmp_path_factory.mktemp("closed-loop"))
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()


@pytest.mark.parametrize(
    ("scenario", "action"),
    [("tool-failure", "disable_tool"), ("groundedness", "force_human_review")],
)
def test_loop_closes(stack: Stack, scenario: str, action: str) -> None:
    chosen = SCENARIOS[scenario]
    result = run_loop(stack, chosen, timeout=LOOP_TIMEOUT)

    assert [s.name for s in result.steps][-1] == "postmortem_written"
    assert result.at("incident_resolved") <= LOOP_TIMEOUT
    kinds = [entry["kind"] for entry in result.timeline]
    assert kinds[0] == "opened"
    assert kinds[-1] == "resolved"
    assert applied_action(stack, result.incident_id, chosen.mitigation) == action
    applied = [
        e
        for e in result.timeline
        if e["kind"] == "mitigation_applied" and e["details"]["mitigation_id"] == chosen.mitigation
    ]
    assert len(applied) == 1
    assert (
        kinds.index("mitigation_applied") < kinds.index("alert_resolved") < kinds.index("resolved")
    )

    assert result.postmortem is not None
    markdown = Path(result.postmortem).read_text(encoding="utf-8")
    assert chosen.runbook in markdown
    assert chosen.control_key in markdown
    assert "resolved" in markdown.lower()


def applied_action(stack: Stack, incident_id: int | None, mitigation: str) -> str:
    """The runbook action behind the mitigation Ballast applied, from the incident's detail."""
    import httpx

    body = httpx.get(f"{stack.ballast}/api/v1/incidents/{incident_id}", timeout=5).json()
    [found] = [m for m in body["mitigations"] if m["id"] == mitigation]
    assert found["state"] == "applied"
    return str(found["action"])
