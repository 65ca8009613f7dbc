"""`to: previous` shows the exact from → to (who shipped what, when) before anyone approves,
stores it with the request, applies exactly that or refuses it as stale, and undo restores
what was live. Through the API and the CLI's output, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.changes.test_change_log import URL, alert, change
from tests.conftest import Clock

RUNBOOK = """\
id: rag/bad-answers
title: "Bad answers on {{ labels.service }}"
service: rag
severity: sev2
owners: ["U0OWNER1", "U0OWNER2"]
match: ['alertname="BadAnswers"']
group_by: [service]
symptom: Answers cite the wrong documents.
business_impact: Customers get wrong answers.
likely_causes:
  - A retrieval index rebuilt from a bad snapshot went live.
mitigations:
  - id: index-back
    title: Roll the retrieval index back
    action: rollback_retrieval_index
    params: {service: rag, to: previous}
    mode: approve
    min_risk: high
  - id: model-back
    title: Back to the previous model
    action: switch_model
    params: {service: rag, to: previous}
    mode: approve
"""

KEY = "rag.retrieval_index"
WHY = (
    "previous from the change log: release-bot made 'kb-12' live at 2026-11-27 04:00 UTC, "
    "replacing 'kb-11'; 'kb-11' was shipped by index-builder at 2026-11-27 03:00 UTC"
)
PLAN = f"{KEY}: 'kb-12' → 'kb-11' ({WHY})"


@pytest.fixture
def runbooks(tmp_path: Path) -> Path:
    folder = tmp_path / "runbooks"
    folder.mkdir()
    (folder / "rag.yaml").write_text(RUNBOOK)
    return folder


async def shipped(h: Any, clock: Clock, *, held: bool = True) -> int:
    """kb-11 then kb-12 shipped by pipelines (kb-12 held in the store when ``held``), then an
    incident opened by a webhook; its id."""
    ci = h.as_("automation")
    first = change(kind="retrieval_index", version="kb-11", by="index-builder")
    assert (await ci.post(URL, json=first)).status_code == 201
    clock.advance(hours=1)
    second = change(kind="retrieval_index", version="kb-12", previous="kb-11", by="release-bot")
    assert (await ci.post(URL, json=second)).status_code == 201
    if held:
        await h.services.controls.write(KEY, "kb-12", actor="deploy", reason="ship kb-12")
    clock.advance(minutes=5)
    assert (await ci.post("/webhooks/alertmanager", json=alert(clock, 1))).status_code == 200
    await h.settle()
    [incident] = (await h.as_("reader").get("/api/v1/incidents")).json()["incidents"]
    return int(incident["id"])


async def mitigation(h: Any, incident_id: int, mitigation_id: str) -> dict[str, Any]:
    detail = (await h.as_("reader").get(f"/api/v1/incidents/{incident_id}")).json()
    [found] = [m for m in detail["mitigations"] if m["id"] == mitigation_id]
    return dict(found)


async def test_the_target_is_shown_stored_and_applied(
    make_harness: Any, runbooks: Path, clock: Clock
) -> None:
    h = await make_harness(runbooks=runbooks)
    incident_id = await shipped(h, clock)
    run = f"/api/v1/incidents/{incident_id}/mitigations/index-back"

    # Before anyone asks: the incident shows what a run would set, and where kb-11 came from.
    before = await mitigation(h, incident_id, "index-back")
    assert (before["state"], before["plan"]["text"]) == ("not_run", PLAN)
    assert (before["plan"]["before"], before["plan"]["after"]) == ("kb-12", "kb-11")

    dry = await h.as_("owner1").post(f"{run}/run", json={"dry_run": True})
    assert dry.status_code == 200, dry.text
    assert dry.json()["message"] == f"dry run: would set {KEY} from 'kb-12' to 'kb-11' ({WHY})"

    requested = await h.as_("owner1").post(f"{run}/run", json={})
    assert requested.status_code == 202, requested.text
    body = requested.json()
    assert body["plan"]["text"] == PLAN
    assert body["message"].endswith(f"; it will set {PLAN}")

    pending = await mitigation(h, incident_id, "index-back")
    assert (pending["state"], pending["plan"]["text"]) == ("awaiting_approval", PLAN)
    timeline = (await h.as_("reader").get(f"/api/v1/incidents/{incident_id}")).json()["timeline"]
    [entry] = [e for e in timeline if e["kind"] == "mitigation_requested"]
    assert entry["summary"].endswith(f"waiting for another approval: {PLAN}")
    assert entry["details"]["plan"]["after"] == "kb-11"

    approved = await h.as_("owner2").post(f"{run}/run", json={})
    assert approved.status_code == 200, approved.text
    assert approved.json()["state"] == "applied"
    assert approved.json()["message"] == f"{KEY}: 'kb-12' → 'kb-11' (builtin; {WHY})"
    assert await h.services.controls.read(KEY) == "kb-11"

    undone = await h.as_("owner1").post(f"{run}/undo", json={})
    assert undone.status_code == 200, undone.text
    assert await h.services.controls.read(KEY) == "kb-12"


@pytest.mark.parametrize("held", [True, False], ids=["held-in-store", "app-default"])
async def test_a_stale_approval_applies_nothing(
    make_harness: Any, runbooks: Path, clock: Clock, held: bool
) -> None:
    """A new index shipped between the request and the approval: 'previous' now means kb-12,
    not the kb-11 the approver was shown; the approval is refused, journaled, nothing set."""
    h = await make_harness(runbooks=runbooks)
    incident_id = await shipped(h, clock, held=held)
    run = f"/api/v1/incidents/{incident_id}/mitigations/index-back/run"
    assert (await h.as_("owner1").post(run, json={})).status_code == 202

    clock.advance(minutes=1)
    fix = change(kind="retrieval_index", version="kb-13", previous="kb-12", by="release-bot")
    assert (await h.as_("automation").post(URL, json=fix)).status_code == 201
    if held:
        await h.services.controls.write(KEY, "kb-13", actor="deploy", reason="ship kb-13")

    refused = await h.as_("owner2").post(run, json={})
    assert refused.status_code == 200, refused.text
    body = refused.json()
    assert body["state"] == "failed"
    now = "'kb-13' → 'kb-12'" if held else "(unset) → 'kb-12'"
    assert "not applied: the change requested and approved was " in body["message"]
    assert f"it would now be {now}; request the mitigation again" in body["message"]
    assert await h.services.controls.read(KEY) == ("kb-13" if held else None)
    timeline = (await h.as_("reader").get(f"/api/v1/incidents/{incident_id}")).json()["timeline"]
    [failed] = [e for e in timeline if e["kind"] == "mitigation_failed"]
    assert "not applied" in failed["details"]["error"]
    assert not [e for e in timeline if e["kind"] == "mitigation_applied"]

    # Asked again, the request shows (and applies) what 'previous' means now.
    again = await h.as_("owner1").post(run, json={})
    assert again.status_code == 202
    assert again.json()["plan"]["after"] == "kb-12"


async def test_switch_model_to_previous_from_the_control_history(
    make_harness: Any, runbooks: Path, clock: Clock
) -> None:
    h = await make_harness(runbooks=runbooks)
    await h.services.controls.write("rag.model", "m-1", actor="alice", reason="")
    clock.advance(minutes=30)
    await h.services.controls.write("rag.model", "m-2", actor="bob", reason="upgrade")
    incident_id = await shipped(h, clock)
    shown = await mitigation(h, incident_id, "model-back")
    assert shown["plan"]["text"] == (
        "rag.model: 'm-2' → 'm-1' (previous from the control history: bob made 'm-2' live at "
        "2026-11-27 03:30 UTC, replacing 'm-1'; 'm-1' was shipped by alice at "
        "2026-11-27 03:00 UTC)"
    )
    run = f"/api/v1/incidents/{incident_id}/mitigations/model-back"
    applied = await h.as_("owner1").post(f"{run}/run", json={})
    assert applied.json()["state"] == "applied", applied.text
    assert await h.services.controls.read("rag.model") == "m-1"
    assert (await h.as_("owner1").post(f"{run}/undo", json={})).status_code == 200
    assert await h.services.controls.read("rag.model") == "m-2"


async def test_a_target_that_cannot_be_told_says_why(
    make_harness: Any, runbooks: Path, clock: Clock
) -> None:
    h = await make_harness(runbooks=runbooks)
    incident_id = await shipped(h, clock)
    shown = await mitigation(h, incident_id, "model-back")
    assert shown["plan"] is None
    assert shown["plan_error"].startswith("no earlier value of rag.model is recorded")


def test_switch_model_names_one_target() -> None:
    from pydantic import ValidationError

    from actions.builtin.switch_model import SwitchModel

    action = SwitchModel()
    assert action.describe(action.parse({"service": "rag", "model": "m-3"})) == (
        "Switch rag to model 'm-3' (rag.model)"
    )
    assert "previous model" in action.describe(action.parse({"service": "rag", "to": "previous"}))
    for both_or_none in ({"service": "rag"}, {"service": "rag", "model": "m", "to": "previous"}):
        with pytest.raises(ValidationError, match="exactly one of `model`"):
            action.parse(both_or_none)


async def test_a_control_plane_that_does_not_answer_does_not_hold_up_the_incident(
    make_harness: Any, runbooks: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Planning reads the control plane; a hung one gives a plan_error, not a hung view."""
    import asyncio

    from bot.incidents import detail

    h = await make_harness(runbooks=runbooks)
    incident_id = await shipped(h, clock)
    monkeypatch.setattr(detail, "PLAN_BUDGET", 0.05)
    stalled: list[str] = []

    async def hung(action: str, params: dict[str, Any]) -> dict[str, Any] | None:
        stalled.append(action)
        await asyncio.Event().wait()  # a backend that never answers
        raise AssertionError("unreachable")

    shown = await detail.load_incident_detail(
        h.services.db,
        h.services.catalog,
        h.services.registry,
        incident_id,
        planner=hung,
    )
    plans = {m.id: (m.plan, m.plan_error) for m in shown.mitigations}
    assert stalled == ["rollback_retrieval_index"]  # the budget is for all plans together
    for plan, error in plans.values():
        assert plan is None
        assert error is not None
        assert "did not answer within 0.05 s" in error
