"""Release gates with a real server: open incidents, freezes, eval regressions, approvals, and
``ballast gate check`` exit codes over real HTTP."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bot.config import BallastConfig
from bot.gates.evals import EvalReportError, scores_of
from tests.conftest import REPO, Clock

EVALS = REPO / "tests" / "fixtures" / "evals"
CHECK = "/api/v1/gates/check"
APPROVE = "/api/v1/gates/approve"

RUNBOOK = """\
id: rag/bad-answers
title: "Bad answers on {{ labels.service }}"
service: rag
severity: sev2
owners: ["U0OWNER1"]
match: ['alertname="BadAnswers"']
group_by: [service]
symptom: Answers cite the wrong documents.
business_impact: Customers get wrong answers.
likely_causes:
  - A prompt edit dropped the "answer only from the sources" clause.
"""

GATES = {
    "gates": {
        "rag": {
            "prompt": {
                "block_on_severity": "sev1",  # the sev2 incident blocks only as a likely cause
                "evals": {
                    "groundedness": {"min": 0.6, "max_regression": 0.02},
                    "pass_rate": {"min": 0.5},
                },
            },
            "model": {"approvals": 2, "owners": ["U0OWNER1", "@oncall"]},
            "retrieval_index": {
                "freeze": [
                    {
                        "cron": "0 17 * * 5",
                        "duration": "64h",
                        "timezone": "Europe/Berlin",
                        "reason": "weekend",
                    }
                ]
            },
        }
    },
    "teams": {"@oncall": ["U0OWNER2", "U0OWNER3"]},
}


@pytest.fixture
def runbooks(tmp_path: Path) -> Path:
    folder = tmp_path / "runbooks"
    folder.mkdir()
    (folder / "rag.yaml").write_text(RUNBOOK)
    return folder


async def harness(make_harness: Any, runbooks: Path) -> Any:
    return await make_harness(runbooks=runbooks, config=BallastConfig.model_validate(GATES))


def ask(kind: str, version: str, **extra: Any) -> dict[str, Any]:
    return {"service": "rag", "kind": kind, "version": version, **extra}


async def test_an_open_incident_naming_the_kind_blocks_until_resolved(
    make_harness: Any, runbooks: Path
) -> None:
    h = await harness(make_harness, runbooks)
    ci = h.as_("automation")
    alert = {"labels": {"alertname": "BadAnswers", "service": "rag"}, "status": "firing"}
    assert (await ci.post("/webhooks/generic", json={"alerts": [alert]})).status_code == 200
    await h.settle()
    report = json.loads((EVALS / "ballast-simple.json").read_text())
    answer = await ci.post(CHECK, json=ask("prompt", "p-42", report=report))
    assert answer.status_code == 200, answer.text
    blocked = answer.json()
    assert blocked["passed"] is False
    assert blocked["decision"] == "blocked"
    assert blocked["reasons"] == [
        "open incident #1 names prompt changes as a likely cause: Bad answers on rag"
    ]
    # Another kind is not named by the runbook, and sev2 is below this gate's bar.
    assert (await ci.post(CHECK, json=ask("build", "b-1"))).json()["passed"] is True
    # An untriaged alert of the service (no runbook: no severity to rank) does not break it.
    triage = {"labels": {"alertname": "Unknown", "service": "rag"}, "status": "firing"}
    assert (await ci.post("/webhooks/generic", json={"alerts": [triage]})).status_code == 200
    await h.settle()
    assert (await ci.post(CHECK, json=ask("build", "b-1"))).json()["passed"] is True

    resolved = await h.as_("owner1").post("/api/v1/incidents/1/resolve", json={})
    assert resolved.status_code == 200
    passed = (await ci.post(CHECK, json=ask("prompt", "p-42", report=report))).json()
    assert passed["passed"] is True, passed
    assert "groundedness: 0.86 ok" in passed["checked"]
    decisions = (await h.as_("reader").get("/api/v1/changes", params={"service": "rag"})).json()
    assert [(c["source"], c["version"], c["note"][:12]) for c in decisions["changes"][:2]] == [
        ("gate", "p-42", "gate passed"),
        ("gate", "b-1", "gate passed"),
    ]


async def test_an_eval_regression_against_the_live_version_blocks(
    make_harness: Any, runbooks: Path
) -> None:
    h = await harness(make_harness, runbooks)
    ci = h.as_("automation")
    simple = json.loads((EVALS / "ballast-simple.json").read_text())
    assert (await ci.post(CHECK, json=ask("prompt", "p-42", report=simple))).json()["passed"]
    shipped = await ci.post("/api/v1/changes", json=ask("prompt", "p-42", previous="p-41"))
    assert shipped.status_code == 201

    regressed = json.loads((EVALS / "ballast-regressed.json").read_text())
    blocked = (await ci.post(CHECK, json=ask("prompt", "p-43", report=regressed))).json()
    assert blocked["passed"] is False
    assert blocked["reasons"] == [
        "groundedness: 0.81 regresses from 0.86 (live version p-42) by 0.05, more than the "
        "0.02 allowed"
    ]
    missing = (await ci.post(CHECK, json=ask("prompt", "p-43"))).json()
    assert missing["reasons"] == [
        "no evaluation report given; this gate checks groundedness, pass_rate (--evals FILE)"
    ]
    promptfoo = json.loads((EVALS / "promptfoo-results.json").read_text())
    low = (await ci.post(CHECK, json=ask("prompt", "p-44", report=promptfoo))).json()
    assert low["reasons"] == [
        "groundedness: 0.7 regresses from 0.86 (live version p-42) by 0.16, more than the 0.02 "
        "allowed",
        "pass_rate: 0.6667 regresses from 0.97 (live version p-42) by 0.3033, more than the 0 "
        "allowed",
    ]
    bad = await ci.post(CHECK, json=ask("prompt", "p-45", report={"results": 3}))
    assert bad.status_code == 422
    assert "report: unknown report format" in bad.json()["detail"]


async def test_approvals_are_by_distinct_owners(make_harness: Any, runbooks: Path) -> None:
    h = await harness(make_harness, runbooks)
    ci = h.as_("automation")
    first = (await ci.post(CHECK, json=ask("model", "gpt-5"))).json()
    assert first["passed"] is False
    assert first["reasons"][0].startswith("needs 2 approval(s) from owners of rag (U0OWNER1, "
                                          "@oncall), has 0")  # fmt: skip
    body = ask("model", "gpt-5")
    assert (await h.as_("owner1").post(APPROVE, json=body)).json()["approvals"] == ["U0OWNER1"]
    # The same person with a second token counts once.
    again = await h.as_("owner1-ci").post(APPROVE, json=body)
    assert again.json()["approvals"] == ["U0OWNER1"]
    assert (await ci.post(CHECK, json=body)).json()["passed"] is False
    stranger = await h.as_("stranger").post(APPROVE, json=body)
    assert stranger.status_code == 403
    assert "U0STRANGER is not an owner of rag" in stranger.json()["detail"]
    service = await h.as_("responder").post(APPROVE, json=body)
    assert service.status_code == 403  # a token with no person cannot approve
    assert (await h.as_("owner2").post(APPROVE, json=body)).json()["approvals"] == [
        "U0OWNER1", "U0OWNER2",
    ]  # fmt: skip
    passed = (await ci.post(CHECK, json=body)).json()
    assert passed["passed"] is True
    assert passed["checked"] == ["no open incident blocks it", "approved by U0OWNER1, U0OWNER2"]
    other = await h.as_("owner1").post(APPROVE, json=ask("guardrail", "g-1"))
    assert other.status_code == 403  # no gate asks for approvals of guardrails


@pytest.mark.parametrize(
    ("now", "frozen"),
    [
        (datetime(2026, 12, 4, 15, 59, tzinfo=UTC), False),  # Friday 16:59 in Berlin
        (datetime(2026, 12, 4, 16, 0, tzinfo=UTC), True),  # Friday 17:00 in Berlin
        (datetime(2026, 12, 7, 7, 59, tzinfo=UTC), True),  # Monday 08:59
        (datetime(2026, 12, 7, 8, 0, tzinfo=UTC), False),  # Monday 09:00: 64 h later
    ],
)
async def test_a_freeze_window_blocks(
    make_harness: Any, runbooks: Path, clock: Clock, now: datetime, frozen: bool
) -> None:
    clock.now = now
    h = await harness(make_harness, runbooks)
    result = (await h.as_("automation").post(CHECK, json=ask("retrieval_index", "kb-9"))).json()
    assert result["passed"] is not frozen
    if frozen:
        [reason] = result["reasons"]
        assert reason.startswith("release freeze (weekend): from 2026-12-04T17:00:00+01:00 ")


async def test_who_may_ask(make_harness: Any, runbooks: Path) -> None:
    h = await harness(make_harness, runbooks)
    assert (await h.anonymous.post(CHECK, json=ask("build", "1"))).status_code == 401
    assert (await h.as_("responder").post(CHECK, json=ask("build", "1"))).status_code == 403
    assert (await h.as_("operator").post(CHECK, json=ask("build", "1"))).status_code == 200
    unknown = await h.as_("operator").post(CHECK, json=ask("weights", "1"))
    assert unknown.status_code == 422
    assert "kind" in unknown.text


def test_report_formats() -> None:
    promptfoo = scores_of(json.loads((EVALS / "promptfoo-results.json").read_text()))
    assert promptfoo == pytest.approx(
        {"pass_rate": 2 / 3, "score": 2 / 3, "groundedness": 0.7, "relevance": 0.75}
    )
    assert scores_of({"metrics": {"a": 1}}) == {"a": 1.0}
    for bad, where in (
        ({"metrics": {"a": "high"}}, "metrics.a"),
        ({"metrics": {"a": float("nan")}}, "metrics.a"),
        ({"results": {"results": []}}, "no test results"),
        ([], "JSON object"),
    ):
        with pytest.raises(EvalReportError, match=where):
            scores_of(bad)


def test_gate_check_exit_codes_over_real_http(
    test_database: Any, clock: Clock, runbooks: Path, tmp_path: Path
) -> None:
    from bot.app import build_services, create_app
    from bot.cli import build_cli
    from bot.settings import Settings
    from tests.controls.conftest import LoopbackServer
    from tests.principals import ROSTER, with_roster

    services = build_services(
        Settings(database_url=test_database.url, runbooks=runbooks),
        with_roster(BallastConfig.model_validate(GATES)),
        clock=clock,
        db=test_database.make(),
    )
    server = LoopbackServer(create_app(services))
    server.start()
    try:
        runner = CliRunner()
        base = ["--url", server.url, "--token", ROSTER["automation"].token]
        ok = runner.invoke(
            build_cli(),
            ["gate", "check", "--service", "rag", "--kind", "prompt", "--version", "p-1",
             "--evals", str(EVALS / "ballast-simple.json"), *base],
        )  # fmt: skip
        assert ok.exit_code == 0, ok.output
        assert ok.output.startswith("PASS: rag prompt p-1")
        report = tmp_path / "low.json"
        report.write_text('{"metrics": {"groundedness": 0.5, "pass_rate": 0.9}}')
        low = runner.invoke(
            build_cli(),
            ["gate", "check", "--service", "rag", "--kind", "prompt", "--version", "p-2",
             "--evals", str(report), *base],
        )  # fmt: skip
        assert low.exit_code == 1
        assert "  blocked: groundedness: 0.5 is below the minimum 0.6" in low.output
        broken = tmp_path / "broken.json"
        broken.write_text("{")
        usage = runner.invoke(
            build_cli(),
            ["gate", "check", "--service", "rag", "--kind", "prompt", "--version", "p-3",
             "--evals", str(broken), *base],
        )  # fmt: skip
        assert usage.exit_code == 2
        assert "not JSON" in usage.output

        # The pipeline's other calls: record what went live, list it; an owner approves.
        recorded = runner.invoke(
            build_cli(),
            ["changes", "record", "--service", "rag", "--kind", "retrieval_index",
             "--version", "kb-12", "--previous", "kb-11", "--by", "release-bot", *base],
        )  # fmt: skip
        assert recorded.exit_code == 0, recorded.output
        assert "rag retrieval_index kb-11 → kb-12 by release-bot" in recorded.output
        reader = ["--url", server.url, "--token", ROSTER["reader"].token]
        listed = runner.invoke(build_cli(), ["changes", "list", "--service", "rag", *reader])
        assert listed.exit_code == 0, listed.output
        assert "rag retrieval_index kb-11 → kb-12 by release-bot" in listed.output
        owner = ["--url", server.url, "--token", ROSTER["owner1"].token]
        approve = ["gate", "approve", "--service", "rag", "--kind", "model", "--version", "m-9"]
        for _ in range(2):  # the same person twice counts once
            approved = runner.invoke(build_cli(), [*approve, *owner])
            assert approved.exit_code == 0, approved.output
            assert approved.output == "approved rag model m-9; approvals: U0OWNER1\n"
    finally:
        server.stop()
