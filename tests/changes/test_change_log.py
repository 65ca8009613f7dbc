"""The change log: recorded by pipelines (idempotent, validated), written by control changes,
and shown in the incident ranked by the runbook's likely causes, then by time."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bot.changelog.kinds import ChangeKind, kind_of_control, kinds_named
from tests.conftest import Clock

URL = "/api/v1/changes"

RUNBOOK = """\
id: rag/bad-answers
title: "Bad answers on {{ labels.service }}"
service: rag
severity: sev2
owners: ["U024BE7LH"]
match: ['alertname="BadAnswers"']
group_by: [service]
symptom: Answers cite the wrong documents.
business_impact: Customers get wrong answers.
likely_causes:
  - A retrieval index rebuilt from a bad snapshot went live.
mitigations:
  - id: supervised
    title: Drop to supervised autonomy
    action: set_autonomy
    params: {service: rag, level: supervised}
    mode: auto
  - id: index-back
    title: Roll the retrieval index back
    action: rollback_retrieval_index
    params: {service: rag, to: previous}
    mode: approve
"""


@pytest.fixture
def runbooks(tmp_path: Path) -> Path:
    folder = tmp_path / "runbooks"
    folder.mkdir()
    (folder / "rag.yaml").write_text(RUNBOOK)
    return folder


def change(**fields: Any) -> dict[str, Any]:
    return {"service": "rag", "kind": "prompt", "version": "p-8", **fields}


async def test_record_is_idempotent_on_the_pipelines_id(make_harness: Any, runbooks: Path) -> None:
    h = await make_harness(runbooks=runbooks)
    ci = h.as_("automation")
    first = await ci.post(URL, json=change(external_id="build-41", previous="p-7"))
    assert first.status_code == 201, first.text
    body = first.json()
    assert (body["version"], body["previous"], body["by"], body["recorded_by"]) == (
        "p-8", "p-7", "automation", "automation",
    )  # fmt: skip
    assert body["source"] == "api"

    again = await ci.post(URL, json=change(external_id="build-41", previous="p-7"))
    assert again.status_code == 200
    assert again.json()["id"] == body["id"]

    reused = await ci.post(URL, json=change(external_id="build-41", version="p-9"))
    assert reused.status_code == 409
    assert "different version, previous" in reused.json()["detail"]
    listed = (await h.as_("reader").get(URL)).json()["changes"]
    assert [c["version"] for c in listed] == ["p-8"]


async def test_who_may_record(make_harness: Any, runbooks: Path) -> None:
    h = await make_harness(runbooks=runbooks)
    assert (await h.anonymous.post(URL, json=change())).status_code == 401
    assert (await h.anonymous.get(URL)).status_code == 401
    for who, status in (
        ("reader", 403),
        ("responder", 403),
        ("operator", 201),
        ("automation", 201),
    ):
        answer = await h.as_(who).post(URL, json=change())
        assert answer.status_code == status, (who, answer.text)
    refused = await h.as_("reader").post(URL, json=change())
    assert "lacks the automation or operator role" in refused.json()["detail"]


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"kind": "weights"}, "kind"),
        ({"kind": "control"}, "kind"),
        ({"service": "Not A Service"}, "service"),
        ({"version": ""}, "version"),
        ({"link": "javascript:alert(1)"}, "link"),
        ({"at": "2026-11-27T02:00:00"}, "at"),
        ({"by": "eve\u202e"}, "by"),
        ({"surprise": 1}, "surprise"),
    ],
)
async def test_bad_input_names_the_field(
    make_harness: Any, runbooks: Path, fields: dict[str, Any], named: str
) -> None:
    h = await make_harness(runbooks=runbooks)
    answer = await h.as_("automation").post(URL, json=change(**fields))
    assert answer.status_code == 422, answer.text
    assert named in answer.text
    assert (await h.as_("reader").get(URL)).json()["changes"] == []


async def test_a_change_from_the_future_is_refused(
    make_harness: Any, runbooks: Path, clock: Clock
) -> None:
    h = await make_harness(runbooks=runbooks)
    later = (clock() + timedelta(hours=1)).isoformat()
    answer = await h.as_("automation").post(URL, json=change(at=later))
    assert answer.status_code == 422
    assert answer.json()["detail"].startswith("at: ")


async def test_list_filters(make_harness: Any, runbooks: Path, clock: Clock) -> None:
    h = await make_harness(runbooks=runbooks)
    ci = h.as_("automation")
    await ci.post(URL, json=change(kind="model", version="m-2"))
    clock.advance(minutes=5)
    await ci.post(URL, json=change(service="other", version="p-1"))
    clock.advance(minutes=5)
    await ci.post(URL, json=change(kind="retrieval_index", version="kb-9"))
    read = h.as_("reader")
    everything = (await read.get(URL)).json()["changes"]
    assert [c["version"] for c in everything] == ["kb-9", "p-1", "m-2"]
    rag = (await read.get(URL, params={"service": "rag"})).json()["changes"]
    assert [c["version"] for c in rag] == ["kb-9", "m-2"]
    kinds = (await read.get(URL, params=[("kind", "model"), ("kind", "prompt")])).json()
    assert [c["version"] for c in kinds["changes"]] == ["p-1", "m-2"]
    since = (clock() - timedelta(minutes=6)).isoformat()
    recent = (await read.get(URL, params={"since": since})).json()["changes"]
    assert [c["version"] for c in recent] == ["kb-9", "p-1"]
    assert (await read.get(URL, params={"kind": "weights"})).status_code == 422
    naive = await read.get(URL, params={"since": "2026-11-27T02:00:00"})
    assert naive.status_code == 422
    assert "since" in naive.text


async def test_control_changes_are_in_the_one_history(make_harness: Any, runbooks: Path) -> None:
    h = await make_harness(runbooks=runbooks)
    put = await h.as_("operator").put(
        "/api/v1/controls/rag.retrieval_index", json={"value": "kb-8", "reason": "pin"}
    )
    assert put.status_code == 200, put.text
    await h.as_("operator").put(
        "/api/v1/controls/rag.retrieval_index", json={"value": "kb-7", "reason": "roll back"}
    )
    [latest, first] = (await h.as_("reader").get(URL)).json()["changes"]
    assert (latest["kind"], latest["previous"], latest["version"]) == (
        "retrieval_index", "kb-8", "kb-7",
    )  # fmt: skip
    assert (latest["source"], latest["control_key"], latest["by"]) == (
        "control", "rag.retrieval_index", "operator",
    )  # fmt: skip
    assert latest["note"].startswith("roll back [via token operator]")
    assert first["previous"] is None


def alert(clock: Clock, minutes_ago: float) -> dict[str, Any]:
    starts = (clock() - timedelta(minutes=minutes_ago)).isoformat().replace("+00:00", "Z")
    return {
        "version": "4",
        "status": "firing",
        "receiver": "ballast",
        "groupKey": "{}:{}",
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://am",
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": "BadAnswers", "service": "rag"},
                "annotations": {},
                "startsAt": starts,
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prom",
                "fingerprint": "f1",
            }
        ],
    }


async def test_the_incident_shows_recent_changes_likely_causes_first(
    make_harness: Any, runbooks: Path, clock: Clock
) -> None:
    h = await make_harness(runbooks=runbooks)
    ci = h.as_("automation")
    await ci.post(URL, json=change(kind="retrieval_index", version="kb-old"))  # 26 h before
    clock.advance(hours=2)
    await ci.post(URL, json=change(kind="retrieval_index", version="kb-12", previous="kb-11"))
    clock.advance(hours=23, minutes=48)
    await ci.post(URL, json=change(kind="prompt", version="p-9"))  # 2 min before the alert
    await ci.post(URL, json=change(service="other", version="x"))
    clock.advance(minutes=2)
    posted = await h.as_("automation").post("/webhooks/alertmanager", json=alert(clock, 0))
    assert posted.status_code == 200, posted.text
    await h.settle()
    [incident] = (await h.as_("reader").get("/api/v1/incidents")).json()["incidents"]
    detail = (await h.as_("reader").get(f"/api/v1/incidents/{incident['id']}")).json()
    shown = [
        (c["kind"], c["version"], c["likely_cause"], c["minutes_before"]) for c in detail["changes"]
    ]
    assert shown[:2] == [
        ("retrieval_index", "kb-12", True, 1430.0),  # named by the runbook: first
        ("prompt", "p-9", False, 2.0),
    ]
    # The auto mitigation's own control change is in the one history too, after the alert.
    assert ("control", "supervised", False) in [
        (c["kind"], c["version"], c["likely_cause"]) for c in detail["changes"]
    ]
    assert all(c["version"] not in ("kb-old", "x") for c in detail["changes"])


def test_kinds_of_control_keys_and_likely_causes() -> None:
    assert kind_of_control("rag.prompt_version") is ChangeKind.PROMPT
    assert kind_of_control("rag.model") is ChangeKind.MODEL
    assert kind_of_control("rag.tools.search.enabled") is ChangeKind.CONTROL
    assert kinds_named(["A prompt version shipped in the last 24h."]) == {ChangeKind.PROMPT}
    assert kinds_named(["The vector index was rebuilt"]) == {ChangeKind.RETRIEVAL_INDEX}
    assert kinds_named(["temperature raised to 1.2", "a guardrail was loosened"]) == {
        ChangeKind.MODEL_SETTINGS, ChangeKind.GUARDRAIL,
    }  # fmt: skip
    assert kinds_named(["Upstream provider outage."]) == set()


def test_cli_record_refuses_bad_kind_and_time_before_calling() -> None:
    from bot.cli import build_cli

    runner = CliRunner()
    cli = build_cli()
    bad_kind = runner.invoke(
        cli, ["changes", "record", "--service", "rag", "--kind", "weights", "--version", "1"]
    )
    assert bad_kind.exit_code != 0
    assert "--kind 'weights' is not a change kind" in bad_kind.output
    naive = runner.invoke(
        cli,
        ["changes", "record", "--service", "rag", "--kind", "model", "--version", "1",
         "--at", "2026-12-04T10:00:00"],
    )  # fmt: skip
    assert naive.exit_code != 0
    assert "needs a timezone" in naive.output


async def test_a_change_during_an_open_incident_goes_to_its_thread(
    make_harness: Any, runbooks: Path, clock: Clock
) -> None:
    from bot.incidents.changes import IncidentChange

    h = await make_harness(runbooks=runbooks)
    posted = await h.as_("automation").post("/webhooks/alertmanager", json=alert(clock, 1))
    assert posted.status_code == 200
    await h.settle()
    [incident] = (await h.as_("reader").get("/api/v1/incidents")).json()["incidents"]

    heard: list[IncidentChange] = []

    class Recorder:
        async def incidents_changed(self, changes: list[IncidentChange]) -> None:
            heard.extend(changes)

    h.services.bus.subscribe(Recorder())
    clock.advance(minutes=2)
    fix = change(kind="retrieval_index", version="kb-13", previous="kb-12", external_id="b-9")
    assert (await h.as_("automation").post(URL, json=fix)).status_code == 201
    assert [(c.incident_id, [n.text for n in c.notes]) for c in heard] == [
        (incident["id"], ["AI change went live: retrieval_index kb-12 → kb-13 by automation"])
    ]
    # A retried record is not news; another service's change is not this incident's.
    assert (await h.as_("automation").post(URL, json=fix)).status_code == 200
    assert (await h.as_("automation").post(URL, json=change(service="other"))).status_code == 201
    assert len(heard) == 1


@pytest.mark.parametrize("held", [False, True], ids=["app-default", "held-in-store"])
async def test_to_previous_comes_from_the_change_log(
    make_harness: Any, runbooks: Path, clock: Clock, held: bool
) -> None:
    """The pipeline shipped kb-12 (replacing kb-11) without going through a control: rolling
    back to 'previous' finds kb-11 in the change log; undo restores what was live."""
    h = await make_harness(runbooks=runbooks)
    await h.as_("automation").post(URL, json=change(kind="retrieval_index", version="kb-10"))
    clock.advance(hours=1)
    shipped = change(kind="retrieval_index", version="kb-12", previous="kb-11", by="release-bot")
    assert (await h.as_("automation").post(URL, json=shipped)).status_code == 201
    if held:  # the store holds kb-12 (set once, with no earlier value in its own history)
        await h.services.controls.write("rag.retrieval_index", "kb-12", actor="seed", reason="")
    clock.advance(minutes=5)
    await h.as_("automation").post("/webhooks/alertmanager", json=alert(clock, 1))
    await h.settle()
    [incident] = (await h.as_("reader").get("/api/v1/incidents")).json()["incidents"]
    run = f"/api/v1/incidents/{incident['id']}/mitigations/index-back"
    applied = await h.as_("lh").post(f"{run}/run", json={})
    assert applied.status_code == 200, applied.text
    assert (await h.services.controls.get("rag.retrieval_index")).value == "kb-11"
    undone = await h.as_("lh").post(f"{run}/undo", json={})
    assert undone.status_code == 200, undone.text
    after_undo = await h.services.controls.get("rag.retrieval_index")
    assert (after_undo.value if after_undo else None) == ("kb-12" if held else None)


async def test_to_previous_without_any_record_says_so(
    make_harness: Any, runbooks: Path, clock: Clock
) -> None:
    h = await make_harness(runbooks=runbooks)
    await h.as_("automation").post("/webhooks/alertmanager", json=alert(clock, 1))
    await h.settle()
    [incident] = (await h.as_("reader").get("/api/v1/incidents")).json()["incidents"]
    run = f"/api/v1/incidents/{incident['id']}/mitigations/index-back/run"
    failed = await h.as_("lh").post(run, json={})
    assert "no earlier value of rag.retrieval_index is recorded" in failed.text
    assert await h.services.controls.get("rag.retrieval_index") is None
