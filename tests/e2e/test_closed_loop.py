"""The closed loop with real parts: Prometheus → Alertmanager → Ballast → the AI app recovers.

The same stack and loop as ``ballast demo``: a simulated support assistant reading its controls
over OFREP, Debian's ``prometheus`` and ``prometheus-alertmanager``, ``ballast serve`` on SQLite
with the repository's runbooks. ``LOOP_TIMEOUT`` is a hang guard, not a goal: how fast the loop
closes is what ``ballast demo --measure-runs`` and docs/benchmarks.md report.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.demo import SCENARIOS, MissingBinary, Stack, run_loop
from bot.demo.loop import keep_postmortem
from bot.demo.stack import DEMO_ONCALL, DEMO_ONCALL_USER, DEMO_TRACES_TITLE, find_binaries
from bot.postmortem.markdown import link as markdown_link
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
    kinds = [entry["kind"] for entry in result.timeline]
    assert kinds[0] == "opened"
    # The scorecard (docs/scorecards.md) is snapshot as of the opening and as of the resolve,
    # from the demo's Prometheus; the one at resolve is written after the resolve itself.
    snapshots = [e["details"]["moment"] for e in result.timeline if e["kind"] == "scorecard"]
    assert snapshots[0] == "open"
    # A verification that read the incident just before the resolve takes its own snapshot
    # after the resolve's (seen on a slow machine): only that may follow it.
    assert "resolve" in snapshots, snapshots
    after_resolve = snapshots[len(snapshots) - snapshots[::-1].index("resolve") :]
    assert set(after_resolve) <= {"verification"}, snapshots
    # The mitigation's verification may conclude after the resolve (its checks run on their
    # own timer; on a slow machine the resolve arrives first): then with a final verdict and no
    # ladder step (bot/verification/verifier.py). Nothing else follows the resolve.
    last_resolve = len(kinds) - 1 - kinds[::-1].index("resolved")
    later = result.timeline[last_resolve + 1 :]
    assert {e["kind"] for e in later} <= {"scorecard", "mitigation_verified"}, later
    assert all(
        e["details"]["verdict"] == "recovered" for e in later if e["kind"] == "mitigation_verified"
    ), later
    assert applied_action(stack, result.incident_id, chosen.mitigation) == action
    assert result.runbook_id == chosen.runbook
    assert result.mitigation is not None
    assert result.mitigation.startswith(f"{chosen.mitigation} ({action}): ")
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

    # The groundedness scenario's pipeline shipped an index just before the fault: the incident
    # ranks it as a likely cause (the runbook names index swaps) and the postmortem shows it.
    if chosen.change is not None:
        [change] = result.changes
        assert (change["kind"], change["version"], change["likely_cause"]) == (
            "retrieval_index", "kb-2026-12-03", True,
        )  # fmt: skip
        assert change["minutes_before"] >= 0
        assert "## What changed" in markdown
        assert "`kb-2026-11-28` → `kb-2026-12-03`" in markdown
    else:
        assert result.changes == []

    # Did it work: the runbook's verify: check against the demo's Prometheus, narrated in one
    # line from the stored verdict (what changed, the value before and after, how long).
    if chosen.verdicts:
        [line] = result.narration
        told = re.fullmatch(
            r"web_search disabled → failed calls/s ([0-9.e+]+) → ([0-9.e+-]+) in [0-9]+ s: "
            r"recovered",
            line,
        )
        assert told is not None, line
        assert float(told[2]) <= float(told[1]) / 10  # the runbook's "lower by 90%"
        [verification] = verifications(stack, result.incident_id)
        assert (verification["mitigation_id"], verification["verdict"]) == (
            "disable-tool", "recovered",
        )  # fmt: skip

    # The demo's ballast.yaml has a traces: template (Tempo in Grafana Explore): the incident
    # and its postmortem carry the link, filled with the service and the incident's times.
    [trace] = result.traces
    assert trace["title"] == DEMO_TRACES_TITLE
    assert "resource.service.name%3D%5C%22" + "support-assistant" in trace["url"]
    assert "{" not in trace["url"]
    assert markdown_link(trace["title"], trace["url"]) in markdown


@pytest.fixture
def own_stack(tmp_path: Path) -> Iterator[Stack]:
    """A fresh stack: the module's shared one carries the controls earlier scenarios set."""
    need_binary("prometheus")
    need_binary("prometheus-alertmanager")
    stack = Stack(tmp_path / "stack")
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()


def test_the_ladder_moves_on_when_the_first_mitigation_does_not_help(own_stack: Stack) -> None:
    """order_lookup feeds wrong data: review of high-risk answers (the first, auto rung) does
    not bring groundedness back, the verdict is not_recovered, the ladder asks for the next
    rung, the on-call approves, order_lookup goes off, recovered; all narrated."""
    chosen = SCENARIOS["ladder"]
    result = run_loop(own_stack, chosen, timeout=LOOP_TIMEOUT)

    timeline = result.timeline

    def index(kind: str, mitigation: str) -> int:
        return next(
            i
            for i, e in enumerate(timeline)
            if e["kind"] == kind and e["details"].get("mitigation_id") == mitigation
        )

    first, second = "review-high-risk", "disable-order-lookup"
    not_recovered = index("mitigation_verified", first)
    ladder = index("mitigation_ladder", first)
    applied = index("mitigation_applied", second)
    recovered = index("mitigation_verified", second)
    assert index("mitigation_applied", first) < not_recovered < ladder < applied < recovered
    assert timeline[not_recovered]["details"]["verdict"] == "not_recovered"
    assert (timeline[ladder]["details"]["step"], timeline[ladder]["details"]["target"]) == (
        "next", second,
    )  # fmt: skip
    assert timeline[recovered]["details"]["verdict"] == "recovered"
    assert [e["kind"] for e in timeline].count("reopened") == 0  # no flapping in between
    assert timeline[applied]["details"]["approvals"] == [DEMO_ONCALL_USER]
    assert [
        (v["mitigation_id"], v["verdict"]) for v in verifications(own_stack, result.incident_id)
    ] == [
        (first, "not_recovered"),
        (second, "recovered"),
    ]

    before, ladder_line, after = result.narration
    assert re.fullmatch(
        r"human_review → high_risk → groundedness 0\.[0-9]+ → 0\.[0-9]+ in [0-9]+ s: "
        r"not_recovered",
        before,
    ), before
    assert ladder_line == f"ladder: {first} not_recovered → next: {second} (approve)"
    assert re.fullmatch(
        r"order_lookup disabled → groundedness 0\.[0-9]+ → 0\.[0-9]+ in [0-9]+ s: recovered", after
    ), after
    assert f"approved by {DEMO_ONCALL}" in next(
        step.detail for step in result.steps if step.name == "ladder_applied"
    )
    assert applied_action(own_stack, result.incident_id, second) == "disable_tool"
    assert result.postmortem is not None


def verifications(stack: Stack, incident_id: int | None) -> list[dict[str, Any]]:
    import httpx

    body = httpx.get(
        f"{stack.ballast}/api/v1/incidents/{incident_id}", headers=stack.reader_headers, timeout=5
    ).json()
    found: list[dict[str, Any]] = body["verifications"]
    return found


def applied_action(stack: Stack, incident_id: int | None, mitigation: str) -> str:
    """The runbook action behind the mitigation Ballast applied, from the incident's detail."""
    import httpx

    body = httpx.get(
        f"{stack.ballast}/api/v1/incidents/{incident_id}", headers=stack.reader_headers, timeout=5
    ).json()
    [found] = [m for m in body["mitigations"] if m["id"] == mitigation]
    assert found["state"] == "applied"
    return str(found["action"])


def link(folder: Path, name: str, target: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.symlink_to(target)
    return path


def test_binaries_are_found_under_either_name_or_by_variable(tmp_path: Path) -> None:
    prometheus = need_binary("prometheus")
    debian = need_binary("prometheus-alertmanager")

    # Debian's names only.
    debian_bin = tmp_path / "debian"
    link(debian_bin, "prometheus", prometheus)
    link(debian_bin, "prometheus-alertmanager", debian)
    found = find_binaries({"PATH": str(debian_bin)})
    assert found == {
        "prometheus": str(debian_bin / "prometheus"),
        "alertmanager": str(debian_bin / "prometheus-alertmanager"),
    }

    # Upstream tarball / Homebrew: plain ``alertmanager``.
    upstream_bin = tmp_path / "upstream"
    link(upstream_bin, "prometheus", prometheus)
    link(upstream_bin, "alertmanager", debian)
    assert find_binaries({"PATH": str(upstream_bin)})["alertmanager"] == str(
        upstream_bin / "alertmanager"
    )

    # Explicit paths win over PATH, which may then hold nothing.
    empty = tmp_path / "empty"
    empty.mkdir()
    found = find_binaries(
        {
            "PATH": str(empty),
            "BALLAST_DEMO_PROMETHEUS": prometheus,
            "BALLAST_DEMO_ALERTMANAGER": debian,
        }
    )
    assert found == {"prometheus": prometheus, "alertmanager": debian}


def test_missing_binaries_are_named_with_every_way_to_provide_them(tmp_path: Path) -> None:
    with pytest.raises(MissingBinary) as missing:
        find_binaries({"PATH": str(tmp_path)})
    message = str(missing.value)
    assert "alertmanager or prometheus-alertmanager not found on PATH" in message
    assert "BALLAST_DEMO_ALERTMANAGER" in message
    assert "BALLAST_DEMO_PROMETHEUS" in message
    assert "brew install" in message

    not_executable = tmp_path / "alertmanager.txt"
    not_executable.write_text("not a program")
    with pytest.raises(MissingBinary, match=r"BALLAST_DEMO_ALERTMANAGER=.* is not an executable"):
        find_binaries(
            {
                "PATH": str(tmp_path),
                "BALLAST_DEMO_PROMETHEUS": need_binary("prometheus"),
                "BALLAST_DEMO_ALERTMANAGER": str(not_executable),
            }
        )


def test_ballast_demo_narrates_keeps_its_postmortem_and_times_for_real(tmp_path: Path) -> None:
    """The command a user runs: upstream binary names, narration, postmortem, timings."""
    upstream_bin = link(tmp_path / "bin", "alertmanager", need_binary("prometheus-alertmanager"))
    prometheus = link(tmp_path / "bin", "prom", need_binary("prometheus"))
    cwd, temp = tmp_path / "cwd", tmp_path / "tmp"
    cwd.mkdir()
    temp.mkdir()
    env = {
        **os.environ,
        "PATH": f"{upstream_bin.parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "BALLAST_DEMO_PROMETHEUS": str(prometheus),
        "TMPDIR": str(temp),
        "COLUMNS": "240",
    }
    done = subprocess.run(
        [sys.executable, "-m", "bot", "demo", "--measure-runs", "2"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=LOOP_TIMEOUT + 120,
        check=False,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert f"binaries: {prometheus}, {upstream_bin}" in out
    assert "runbook support-assistant/tool-failure-spike" in out  # narrated as it opens
    assert "Runbook matched: support-assistant/tool-failure-spike" in out
    assert "Mitigation applied: disable-tool (disable_tool): Disable" in out
    assert re.search(
        r"Verified: web_search disabled → failed calls/s [0-9.e+]+ → [0-9.e+-]+ in [0-9]+ s: "
        r"recovered",
        out,
    ), out
    assert f"Traces: {DEMO_TRACES_TITLE}: http://localhost:3000/explore?" in out

    took = re.search(r"over 2 runs \(took (\d+\.\d+)s\)", out)
    assert took is not None, out
    assert float(took.group(1)) > 0
    assert re.search(r"p50 \d+\.\d ms", out)

    [kept] = cwd.glob("*.md")
    assert f"Postmortem draft: {kept}" in out.replace("\n", "")
    draft = kept.read_text(encoding="utf-8")
    assert "support-assistant/tool-failure-spike" in draft
    # The scorecard from the demo's real Prometheus: before (opened) and after (resolved).
    assert "## Scorecard" in draft
    [row] = [line for line in draft.splitlines() if line.startswith("| tool failure rate |")]
    before, after = row.split("|")[2].strip(), row.split("|")[4].strip()
    assert before.endswith("%"), row
    assert after != "\u2013", row  # an en dash: no snapshot at resolve
    assert list(temp.iterdir()) == []  # the demo's temp folder is gone


def test_postmortem_copy_never_overwrites(tmp_path: Path) -> None:
    draft = tmp_path / "draft" / "2026-12-03-1-web-search.md"
    draft.parent.mkdir()
    draft.write_text("draft")
    here = tmp_path / "here"
    here.mkdir()
    (here / draft.name).write_text("someone's notes")
    kept = keep_postmortem(draft, here)
    assert kept == here / "2026-12-03-1-web-search-2.md"
    assert kept.read_text() == "draft"
    assert (here / draft.name).read_text() == "someone's notes"
    assert keep_postmortem(None, here) is None
    assert keep_postmortem(tmp_path / "gone.md", here) is None
