"""The incident message and the slash-command answers: layout, buttons, limits, button values."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from bot.controls.store import ControlValue
from bot.incidents.read_model import (
    AlertOut,
    ChangeOut,
    IncidentDetail,
    IncidentSummary,
    MitigationOut,
)
from bot.runbooks.schema import Runbook
from bot.slack.answers import (
    render_controls,
    render_ephemeral,
    render_incident_list,
    render_runbook,
    render_runbook_list,
)
from bot.slack.commands import HELP
from bot.slack.ids import ActionId, ButtonValue, ButtonValueError, action_id, parse_action_id
from bot.slack.incident_message import render_incident
from bot.slack.mrkdwn import SlackMessage
from bot.slack.text import mention
from bot.slack.view import build_view

RUNBOOKS = Path(__file__).parents[2] / "runbooks"
T0 = datetime(2025, 3, 4, 3, 12, tzinfo=UTC)
GROUPS = {"@support-ai-oncall": "S0SUPPORT1"}


# ---- a validator for Slack's documented limits (REFERENCE.md, Block Kit reference) ----------


def assert_within_limits(message: SlackMessage) -> None:
    assert 0 < len(message.text) <= 40_000
    assert len(message.blocks) <= 50
    json.dumps(message.blocks)  # serialisable as sent
    block_ids: list[str] = []
    action_ids: list[str] = []
    for block in message.blocks:
        if "block_id" in block:
            assert len(block["block_id"]) <= 255
            block_ids.append(block["block_id"])
        kind = block["type"]
        if kind == "header":
            assert block["text"]["type"] == "plain_text"
            assert 0 < len(block["text"]["text"]) <= 150
        elif kind == "section":
            assert "text" in block or "fields" in block
            if "text" in block:
                assert 0 < len(block["text"]["text"].strip()) <= 3000
            fields = block.get("fields", [])
            assert len(fields) <= 10
            assert all(0 < len(f["text"]) <= 2000 for f in fields)
        elif kind == "actions":
            assert 0 < len(block["elements"]) <= 25
            for button in block["elements"]:
                assert button["type"] == "button"
                assert 0 < len(button["text"]["text"]) <= 75
                assert len(button["action_id"]) <= 255
                assert len(button["value"]) <= 2000
                assert button.get("style") in (None, "primary", "danger")
                action_ids.append(button["action_id"])
                if "confirm" in button:
                    confirm = button["confirm"]
                    assert len(confirm["title"]["text"]) <= 100
                    assert len(confirm["text"]["text"]) <= 300
                    assert len(confirm["confirm"]["text"]) <= 30
                    assert len(confirm["deny"]["text"]) <= 30
        elif kind == "context":
            assert 0 < len(block["elements"]) <= 10
        else:
            assert kind == "divider", kind
    assert len(block_ids) == len(set(block_ids)), "block ids must be unique in a message"
    assert len(action_ids) == len(set(action_ids)), "action ids must be unique in a message"
    markup = [message.text, *mrkdwn_texts(message.blocks)]  # plain_text is never parsed
    for mass_mention in ("<!channel", "<!here", "<!everyone"):
        assert not any(mass_mention in text for text in markup)


def mrkdwn_texts(node: object) -> list[str]:
    if isinstance(node, list):
        return [text for item in node for text in mrkdwn_texts(item)]
    if isinstance(node, dict):
        if node.get("type") == "mrkdwn":
            return [node["text"]]
        return [text for value in node.values() for text in mrkdwn_texts(value)]
    return []


# ---- fixtures -------------------------------------------------------------------------------


def load_runbook(name: str) -> Runbook:
    return Runbook.model_validate(yaml.safe_load((RUNBOOKS / name).read_text()))


@pytest.fixture
def runbook() -> Runbook:
    return load_runbook("support-assistant-groundedness-drop.yaml")


def alert(index: int = 0, firing: bool = True, **labels: str) -> AlertOut:
    return AlertOut(
        fingerprint=f"fp{index:05d}",
        status="firing" if firing else "resolved",
        labels={
            "alertname": "GroundednessLow",
            "service": "support-assistant",
            "env": "prod",
            "severity": "warning",
            "prompt_version": "v41",
            "model": "openai/gpt-4o",
            **labels,
        },
        annotations={"summary": "Groundedness 0.71 over 30m (n=412)"},
        starts_at=T0,
        ends_at=None if firing else T0 + timedelta(minutes=9),
        generator_url=None,
        source="alertmanager",
    )


def mitigation(mitigation_id: str = "rollback-prompt", **fields: Any) -> MitigationOut:
    values: dict[str, Any] = {
        "id": mitigation_id,
        "title": "Roll the prompt back to the previous version",
        "action": "rollback_prompt",
        "mode": "approve",
        "risk": "medium",
        "preview": "Roll back the prompt of support-assistant to the previous version "
        "(support-assistant.prompt_version)",
        "reversible": True,
        "state": "not_run",
    }
    return MitigationOut.model_validate(values | fields)


def realistic_mitigations() -> list[MitigationOut]:
    return [
        mitigation(
            "review-high-risk",
            title="Hold refund, cancellation and account-change answers for agent review",
            action="force_human_review",
            mode="auto",
            risk="low",
            preview="Set human review for support-assistant to high_risk "
            "(support-assistant.human_review)",
            state="applied",
            requested_by="ballast",
            approvals=["ballast"],
            applied_at=T0 + timedelta(seconds=4),
            before="off",
            after="high_risk",
        ),
        mitigation(
            state="awaiting_approval",
            risk="high",
            requested_by="U05KQ7J2M1P",
            approvals=["U05KQ7J2M1P"],
        ),
        mitigation(
            "pin-model",
            title="Pin the model to the snapshot we evaluated (gpt-4o-2024-08-06)",
            action="switch_model",
            preview="Switch the model of support-assistant to openai/gpt-4o-2024-08-06",
        ),
        mitigation(
            "rollback-search-index",
            title="Ask search-rag on-call to roll back their index (their runbook, their call)",
            action="rollback_retrieval_index",
            mode="manual",
            preview="Roll back the retrieval index of search-rag to the previous one",
        ),
    ]


def detail(**fields: Any) -> IncidentDetail:
    alerts = fields.pop("alerts", [alert(0, pod="a"), alert(1, pod="b"), alert(2, False, pod="c")])
    values: dict[str, Any] = {
        "id": 42,
        "runbook_id": "support-assistant/groundedness-drop",
        "status": "triggered",
        "title": "support-assistant: answers drifting from sources (GroundednessLow, prompt v41, "
        "openai/gpt-4o)",
        "severity": "sev2",
        "service": "support-assistant",
        "group_labels": {"service": "support-assistant"},
        "alert_count": len(alerts),
        "firing_count": sum(a.status == "firing" for a in alerts),
        "opened_at": T0,
        "detected_at": T0,
        "acknowledged_at": None,
        "acknowledged_by": None,
        "resolved_at": None,
        "resolved_by": None,
        "reopen_count": 0,
        "phases_seconds": {},
        "alerts": alerts,
        "timeline": [],
        "mitigations": realistic_mitigations(),
    }
    return IncidentDetail.model_validate(values | fields)


def render(runbook: Runbook | None, **fields: Any) -> SlackMessage:
    message = render_incident(
        build_view(
            detail(**fields), runbook, base_url="https://ballast.example.com/", group_ids=GROUPS
        )
    )
    assert_within_limits(message)
    return message


def texts(message: SlackMessage) -> list[str]:
    return [b["text"]["text"] for b in message.blocks if b["type"] == "section" and "text" in b]


def buttons(message: SlackMessage, block_id: str) -> list[dict[str, Any]]:
    found = [b for b in message.blocks if b.get("block_id") == block_id]
    return found[0]["elements"] if found else []


def labels(message: SlackMessage, block_id: str) -> list[str]:
    return [button["text"]["text"] for button in buttons(message, block_id)]


# ---- the realistic incident -----------------------------------------------------------------


def test_realistic_incident_layout(runbook: Runbook) -> None:
    message = render(runbook)
    assert [b["type"] for b in message.blocks] == [
        "header",
        "section",  # status fields
        "actions",  # acknowledge, resolve
        "section",  # symptom
        "section",  # business impact
        "section",  # dashboards
        "section",  # likely causes
        "section",  # alerts
        "divider",
        *["section", "actions"] * 4,  # one row per mitigation
        "context",
    ]
    header = message.blocks[0]["text"]["text"]
    assert header == (
        ":large_orange_circle: SEV2 · support-assistant: answers drifting from sources "
        "(GroundednessLow, prompt v41, openai/gpt-4o)"
    )
    fields = [f["text"] for f in message.blocks[1]["fields"]]
    assert fields == [
        "*Status*\n:rotating_light: Triggered — *not acknowledged*",
        "*Severity*\nSEV2",
        "*Service*\n`support-assistant`",
        "*Opened*\n<!date^1741057920^{date_short_pretty} {time}|2025-03-04 03:12 UTC>",
        "*Owners*\n<!subteam^S0SUPPORT1|@support-ai-oncall> <@U05KQ7J2M1P>",
        "*Alerts firing*\n2 of 3",
    ]
    assert labels(message, "ballast.incident") == ["Acknowledge", "Resolve"]
    sections = texts(message)
    assert sections[0].startswith("*Symptom*\nJudged groundedness below 0.80 over 30m")
    assert sections[1].startswith("*Business impact*\nConfidently wrong answers")
    assert sections[2].splitlines()[:2] == [
        "*Dashboards*",
        "• <https://grafana.example.com/d/llm-eval/online-eval?var-service=support-assistant"
        "&amp;var-env=prod&amp;from=now-24h|Online eval (groundedness, rubric, sample size)>",
    ]
    assert sections[3].startswith("*Likely causes*\n1. A prompt version shipped in the last 24h.")
    assert sections[3].count("\n") == 5
    assert sections[4] == (
        "*Alerts* — 2 of 3 firing\n"
        ":fire: `GroundednessLow` pod=`a` — Groundedness 0.71 over 30m (n=412)\n"
        ":fire: `GroundednessLow` pod=`b` — Groundedness 0.71 over 30m (n=412)\n"
        ":large_green_circle: `GroundednessLow` pod=`c` — Groundedness 0.71 over 30m (n=412)"
    )
    assert sections[5] == (
        "*1. Hold refund, cancellation and account-change answers for agent review*\n"
        ":large_green_circle: low risk · runs automatically · reversible · "
        ":white_check_mark: applied\n"
        "> Set human review for support-assistant to high_risk (support-assistant.human_review)\n"
        "Run by Ballast\n"
        "`off` → `high_risk`"
    )
    assert sections[6] == (
        "*2. Roll the prompt back to the previous version*\n"
        ":red_circle: high risk · needs 2 approvals (two people) · reversible · "
        ":hourglass_flowing_sand: awaiting approval\n"
        "> Roll back the prompt of support-assistant to the previous version "
        "(support-assistant.prompt_version)\n"
        "Requested by <@U05KQ7J2M1P> · approvals 1 of 2: <@U05KQ7J2M1P>"
    )
    assert message.blocks[-1]["elements"][0]["text"] == (
        "Incident #42 · runbook `support-assistant/groundedness-drop` · `/ballast show 42` · "
        "<https://ballast.example.com/api/v1/incidents/42|API>"
    )
    # The fallback text is what notifications show: it carries the owners so they are pinged.
    assert message.text == (
        "SEV2 #42 support-assistant: answers drifting from sources (GroundednessLow, prompt v41, "
        "openai/gpt-4o) — triggered; 2 of 3 alerts firing. "
        "Owners: <!subteam^S0SUPPORT1|@support-ai-oncall> <@U05KQ7J2M1P>"
    )


def test_mitigation_rows_have_buttons_for_their_state(runbook: Runbook) -> None:
    message = render(runbook)
    assert labels(message, "ballast.mitigation:review-high-risk") == ["Undo"]
    assert labels(message, "ballast.mitigation:rollback-prompt") == ["Approve", "Skip"]
    assert labels(message, "ballast.mitigation:pin-model") == ["Run", "Skip"]
    assert labels(message, "ballast.mitigation:rollback-search-index") == ["Mark done", "Skip"]
    approve = buttons(message, "ballast.mitigation:rollback-prompt")[0]
    assert approve["action_id"] == "ballast.approve:rollback-prompt"
    assert approve["style"] == "danger"
    assert approve["confirm"]["title"]["text"] == "Approve: high-risk action"
    assert approve["confirm"]["text"]["text"].startswith("Roll back the prompt of support")


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        # (mitigation fields, [(label, style, has confirm)])
        ({"state": "not_run", "risk": "low"}, [("Run", "primary", False), ("Skip", None, False)]),
        ({"state": "not_run", "risk": "medium"}, [("Run", "danger", False), ("Skip", None, False)]),
        ({"state": "not_run", "risk": "high"}, [("Run", "danger", True), ("Skip", None, False)]),
        ({"state": "not_run", "risk": None}, [("Run", "danger", True), ("Skip", None, False)]),
        (
            {"state": "not_run", "mode": "manual"},
            [("Mark done", None, False), ("Skip", None, False)],
        ),
        (
            {"state": "failed", "error": "Unleash answered 503"},
            [("Run again", "danger", False), ("Skip", None, False)],
        ),
        (
            {"state": "failed", "mode": "manual"},
            [("Mark done", None, False), ("Skip", None, False)],
        ),
        (
            {
                "state": "awaiting_approval",
                "risk": "low",
                "requested_by": "U1",
                "approvals": ["U1"],
            },
            [("Approve", "primary", False), ("Skip", None, False)],
        ),
        (
            {
                "state": "awaiting_approval",
                "risk": "high",
                "requested_by": "U1",
                "approvals": ["U1"],
            },
            [("Approve", "danger", True), ("Skip", None, False)],
        ),
        ({"state": "applied", "reversible": True}, [("Undo", None, True)]),
        ({"state": "applied", "reversible": False}, []),
        ({"state": "running"}, []),
        ({"state": "undoing"}, []),
        ({"state": "undone", "undone_by": "U2"}, []),
        ({"state": "done_manually", "mode": "manual"}, []),
        ({"state": "some_future_state"}, []),
    ],
)
def test_buttons_by_state(
    runbook: Runbook, fields: dict[str, Any], expected: list[tuple[str, str | None, bool]]
) -> None:
    message = render(runbook, mitigations=[mitigation(**fields)])
    got = [
        (b["text"]["text"], b.get("style"), "confirm" in b)
        for b in buttons(message, "ballast.mitigation:rollback-prompt")
    ]
    assert got == expected
    assert any(t.startswith("*1. Roll the prompt back") for t in texts(message))


def test_state_lines_say_who_did_what(runbook: Runbook) -> None:
    applied = mitigation(
        state="applied",
        risk="high",
        requested_by="U1AAA",
        approvals=["U1AAA", "U2BBB"],
        before="v41",
        after="v40",
    )
    undone = mitigation("pin-model", state="undone", undone_by="U3CCC", before="a", after="b")
    failed = mitigation("x", state="failed", error="control plane said <b>no</b> & gave up")
    message = render(runbook, mitigations=[applied, undone, failed])
    rows = texts(message)[-3:]
    assert rows[0].splitlines()[-2:] == [
        "Requested by <@U1AAA> · approved by <@U1AAA>, <@U2BBB>",
        "`v41` → `v40`",
    ]
    assert rows[1].splitlines()[-2:] == ["`a` → `b`", "Undone by <@U3CCC>"]
    assert rows[2].splitlines()[-1] == (
        ":warning: control plane said &lt;b&gt;no&lt;/b&gt; &amp; gave up"
    )


@pytest.mark.parametrize(
    ("status", "incident_buttons", "row_buttons"),
    [
        ("triggered", ["Acknowledge", "Resolve"], ["Approve", "Skip"]),
        ("acknowledged", ["Resolve"], ["Approve", "Skip"]),
        ("mitigating", ["Resolve"], ["Approve", "Skip"]),
        ("monitoring", ["Resolve"], ["Approve", "Skip"]),
        ("resolved", [], []),
    ],
)
def test_incident_buttons_by_status(
    runbook: Runbook, status: str, incident_buttons: list[str], row_buttons: list[str]
) -> None:
    message = render(runbook, status=status, resolved_at=T0 if status == "resolved" else None)
    assert labels(message, "ballast.incident") == incident_buttons
    assert labels(message, "ballast.mitigation:rollback-prompt") == row_buttons
    # Lifting a mitigation after the incident is resolved is normal: Undo stays.
    assert labels(message, "ballast.mitigation:review-high-risk") == ["Undo"]


def test_acknowledged_and_resolved_status_fields(runbook: Runbook) -> None:
    acked = render(runbook, status="acknowledged", acknowledged_at=T0, acknowledged_by="U9ZZZ")
    assert acked.blocks[1]["fields"][0]["text"] == (
        "*Status*\n:eyes: Acknowledged\nack <!date^1741057920^{date_short_pretty} {time}"
        "|2025-03-04 03:12 UTC> by <@U9ZZZ>"
    )
    resolved = render(
        runbook, status="resolved", resolved_at=T0, resolved_by="alice", reopen_count=2
    )
    assert resolved.blocks[0]["text"]["text"].startswith(":white_check_mark: Resolved · SEV2 · ")
    assert resolved.blocks[1]["fields"][0]["text"] == (
        "*Status*\n:white_check_mark: Resolved <!date^1741057920^{date_short_pretty} {time}"
        "|2025-03-04 03:12 UTC> by alice\nreopened 2 times"
    )


# ---- the view: owners, dashboards, alerts ----------------------------------------------------


def test_owner_mentions() -> None:
    assert mention("U05KQ7J2M1P") == "<@U05KQ7J2M1P>"
    assert mention("W0123ABC") == "<@W0123ABC>"
    assert mention("@support-ai-oncall", GROUPS) == "<!subteam^S0SUPPORT1|@support-ai-oncall>"
    assert mention("@support-ai-oncall") == "@support-ai-oncall"  # no id known: plain text
    assert mention("@team", {"@team": "<!channel>"}) == "@team"  # a bad id is not markup
    assert mention("ballast") == "Ballast"
    assert mention("Mallory <!channel>") == "Mallory &lt;!channel&gt;"
    assert mention("U123\n<!channel>") == "U123\n&lt;!channel&gt;"  # not an id: escaped


def test_dashboard_whose_template_fails_is_shown_with_a_note(runbook: Runbook) -> None:
    broken = runbook.model_copy(
        update={
            "dashboards": [
                *runbook.dashboards[:1],
                runbook.dashboards[0].model_copy(
                    update={"title": "Per pod", "url": "https://g.example.com/{{ labels.pod_ip }}"}
                ),
                runbook.dashboards[0].model_copy(
                    update={"title": "Static", "url": "https://g.example.com/d/static"}
                ),
                runbook.dashboards[0].model_copy(
                    update={"title": "Not http", "url": "javascript:alert(1)"}
                ),
            ]
        }
    )
    view = build_view(detail(), broken)
    assert view.dashboards[1].url is None
    assert view.dashboards[1].note is not None
    assert view.dashboards[1].note.startswith("link not rendered: label 'pod_ip' is not set")
    message = render_incident(view)
    assert_within_limits(message)
    lines = texts(message)[2].splitlines()
    assert lines[2].startswith("• Per pod — _link not rendered: label 'pod_ip' is not set")
    assert lines[3] == "• <https://g.example.com/d/static|Static>"
    assert lines[4] == "• Not http (`javascript:alert(1)`)"


def test_incident_without_alerts_or_runbook() -> None:
    runbook = load_runbook("support-assistant-groundedness-drop.yaml")
    view = build_view(detail(alerts=[], mitigations=[]), runbook)
    assert all(
        d.url is None and d.note == "no alert to fill in the link from" for d in view.dashboards
    )
    assert_within_limits(render_incident(view))
    gone = render(None, mitigations=[])
    assert (
        ":warning: Runbook `support-assistant/groundedness-drop` is not in the catalog."
        in texts(gone)
    )
    assert "Symptom" not in json.dumps(gone.blocks)


def test_alert_labels_that_identify_an_alert(runbook: Runbook) -> None:
    view = build_view(detail(alerts=[alert(0, pod="a"), alert(1, pod="b")]), runbook)
    assert [e.labels for e in view.alerts.examples] == [(("pod", "a"),), (("pod", "b"),)]
    single = build_view(detail(alerts=[alert(0)]), runbook)
    # One alert: nothing to tell apart, so its own labels (minus the obvious ones) are shown.
    assert single.alerts.examples[0].labels == (
        ("model", "openai/gpt-4o"),
        ("prompt_version", "v41"),
    )


def test_user_text_is_escaped(runbook: Runbook) -> None:
    hostile = alert(0)
    hostile = hostile.model_copy(
        update={"annotations": {"summary": "<!channel> wake up & <https://evil.example|click>"}}
    )
    message = render(runbook, alerts=[hostile], title="<!here> & co")
    assert "&lt;!channel&gt; wake up &amp; &lt;https://evil.example|click&gt;" in texts(message)[4]
    assert message.text.startswith("SEV2 #42 &lt;!here&gt; &amp; co")


# ---- limits under stress ---------------------------------------------------------------------


def test_limits_with_a_huge_incident(runbook: Runbook) -> None:
    big_runbook = runbook.model_copy(
        update={
            "symptom": "S" * 10_000,
            "business_impact": "B & " * 2_500,
            "likely_causes": ["C" * 2_000] * 40,
            "dashboards": [runbook.dashboards[0]] * 60,
            "owners": [f"U{n:010d}" for n in range(200)],
        }
    )
    states = ["not_run", "awaiting_approval", "applied", "failed", "undone", "running"]
    mitigations = [
        mitigation(
            f"m{n:02d}",
            title="T" * 120,
            state=states[n % len(states)],
            risk=["low", "medium", "high"][n % 3],
            preview="P" * 5_000,
            requested_by="U1",
            approvals=[f"U{k}" for k in range(30)],
            before="x" * 3_000,
            after={"nested": ["y" * 3_000]},
            error="E" * 5_000,
        )
        for n in range(30)
    ]
    alerts = [alert(n, n % 3 != 0, pod=f"pod-{n}", zone="z" * 500) for n in range(1_000)]
    message = render(
        big_runbook,
        title="X" * 400,
        alerts=alerts,
        alert_count=1_000,
        firing_count=666,
        mitigations=mitigations,
    )
    assert len(message.blocks) <= 50
    assert message.blocks[0]["text"]["text"].endswith("…")
    sections = texts(message)
    assert sections[0].endswith(
        "… _(cut; full text: `/ballast runbook support-assistant/groundedness-drop`)_"
    )
    assert "&amp;" in sections[1]
    assert not sections[1].rstrip("…").endswith("&")
    alerts_text = next(t for t in sections if t.startswith("*Alerts*"))
    assert alerts_text.startswith("*Alerts* — 666 of 1000 firing\n")
    assert alerts_text.endswith("\n…and 995 more")
    shown = [b for b in message.blocks if b.get("block_id", "").startswith("ballast.mitigation:")]
    assert 10 <= len(shown) < 30
    more = message.blocks[-2]["elements"][0]["text"]
    assert more.startswith("+")
    assert more.endswith("more mitigations: `/ballast show 42`")


def test_many_mitigations_without_buttons_use_one_block_each(runbook: Runbook) -> None:
    mitigations = [mitigation(f"m{n:02d}", state="undone") for n in range(60)]
    message = render(runbook, mitigations=mitigations)
    assert len(message.blocks) == 50
    assert message.blocks[-2]["elements"][0]["text"].endswith(
        "more mitigations: `/ballast show 42`"
    )


# ---- thread notes and slash-command answers --------------------------------------------------


def test_ephemeral_help_and_long_text() -> None:
    message = render_ephemeral(HELP)
    assert_within_limits(message)
    assert len(message.blocks) == 1
    long = render_ephemeral("\n".join(f"line {n} " + "w" * 200 for n in range(2_000)))
    assert_within_limits(long)
    assert long.blocks[-1]["elements"][0]["text"].startswith("…and ")
    assert_within_limits(render_ephemeral(""))


def summary(n: int, severity: str) -> IncidentSummary:
    return IncidentSummary.model_validate(
        detail(id=n, severity=severity, opened_at=T0 + timedelta(minutes=n)).model_dump()
    )


def test_incident_list() -> None:
    incidents = [summary(1, "sev3"), summary(2, "sev1"), summary(3, "sev1")]
    message = render_incident_list(incidents)
    assert_within_limits(message)
    assert message.blocks[0]["text"]["text"] == "Open incidents: 3"
    lines = message.blocks[1]["text"]["text"].splitlines()
    assert [line.split("*")[1] for line in lines] == ["#3", "#2", "#1"]  # most severe, newest first
    assert lines[0].startswith(":red_circle: *#3* SEV1 support-assistant: answers drifting")
    many = render_incident_list([summary(n, "sev2") for n in range(1, 2_001)])
    assert_within_limits(many)
    assert "more lines" in many.blocks[-1]["elements"][0]["text"]
    assert (
        render_incident_list([]).blocks[0]["text"]["text"]
        == ":white_check_mark: No open incidents."
    )


@pytest.mark.parametrize("path", sorted(RUNBOOKS.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_example_runbook_renders_within_limits(path: Path) -> None:
    runbook = Runbook.model_validate(yaml.safe_load(path.read_text()))
    message = render_runbook(runbook, group_ids=GROUPS)
    assert_within_limits(message)
    assert message.blocks[0]["text"]["text"] == f"Runbook {runbook.id}"


def test_runbook_answer(runbook: Runbook) -> None:
    text = "\n".join(texts(render_runbook(runbook, group_ids=GROUPS)))
    assert "*Owners* <!subteam^S0SUPPORT1|@support-ai-oncall> <@U05KQ7J2M1P>" in text
    assert "• after 15m: <!subteam^S0SUPPORT1|@support-ai-oncall>, #inc-support-assistant" in text
    assert "• after 30m: page `support-ai-primary`" in text
    assert "1. Hold refund, cancellation and account-change answers for agent review — " in text


def test_runbook_list(runbook: Runbook) -> None:
    message = render_runbook_list([runbook] * 300, "ground")
    assert_within_limits(message)
    assert message.blocks[0]["text"]["text"] == "Runbooks matching “ground”"
    assert (
        render_runbook_list([], "<x>").blocks[0]["text"]["text"]
        == "No runbooks matching `&lt;x&gt;`."
    )


def test_controls() -> None:
    values = [
        ControlValue("support-assistant.tools.refund.enabled", False, "bool", 3, T0, "U1AAA"),
        ControlValue("support-assistant.autonomy", "supervised", "string", 1, T0, "ballast"),
    ]
    message = render_controls(values, service="support-assistant")
    assert_within_limits(message)
    assert message.blocks[0]["text"]["text"] == "AI controls: support-assistant"
    assert message.blocks[1]["text"]["text"].splitlines() == [
        "`support-assistant.autonomy` = `supervised` · v1 · Ballast "
        "<!date^1741057920^{date_short_pretty} {time}|2025-03-04 03:12 UTC>",
        "`support-assistant.tools.refund.enabled` = `false` · v3 · <@U1AAA> "
        "<!date^1741057920^{date_short_pretty} {time}|2025-03-04 03:12 UTC>",
    ]
    empty = render_controls([], service="x")
    assert empty.blocks[0]["text"]["text"].startswith("No AI control values are set for `x`")


# ---- action ids and button values ------------------------------------------------------------


def test_button_values_carry_the_rendered_state(runbook: Runbook) -> None:
    view = build_view(detail(), runbook)
    message = render_incident(view)
    approve = buttons(message, "ballast.mitigation:rollback-prompt")[0]
    kind, mitigation_id = parse_action_id(approve["action_id"])
    value = ButtonValue.decode(approve["value"], expected=kind)
    assert (kind, mitigation_id) == (ActionId.APPROVE, "rollback-prompt")
    assert value == ButtonValue(
        action=ActionId.APPROVE,
        incident_id=42,
        mitigation_id="rollback-prompt",
        state="awaiting_approval",
        version=view.mitigations[1].version,
    )
    # A second approval changes the version: a click on the old message is recognisably stale.
    newer = detail()
    newer.mitigations[1].approvals.append("U2BBB")
    assert build_view(newer, runbook).mitigations[1].version != value.version
    ack = buttons(message, "ballast.incident")[0]
    assert ButtonValue.decode(ack["value"]).version == view.version
    assert ActionId.RUN.pattern.match("ballast.run:pin-model")
    assert ActionId.RUN.pattern.match("ballast.run")
    assert not ActionId.RUN.pattern.match("ballast.run_all")


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("", "is not one Ballast made"),
        ("not json", "is not one Ballast made"),
        (
            '{"v":1,"action":"ballast.run","incident_id":"42","mitigation_id":"m","state":"not_run",'
            '"version":"0123456789abcdef"}',
            "incident_id: Input should be a valid integer",
        ),
        (
            '{"v":1,"action":"ballast.run","incident_id":42,"mitigation_id":"m","state":"not_run",'
            '"version":"0123456789abcdef","admin":true}',
            "admin: Extra inputs are not permitted",
        ),
        (
            '{"v":1,"action":"ballast.nuke","incident_id":42,"state":"x","version":"0123456789abcdef"}',
            "action: Input should be",
        ),
        (
            '{"v":1,"action":"ballast.run","incident_id":42,"state":"not_run",'
            '"version":"0123456789abcdef"}',
            "ballast.run needs mitigation_id",
        ),
        (
            '{"v":1,"action":"ballast.ack","incident_id":42,"mitigation_id":"m","state":"triggered",'
            '"version":"0123456789abcdef"}',
            "ballast.ack takes no mitigation_id",
        ),
        (
            '{"v":2,"action":"ballast.ack","incident_id":42,"state":"triggered",'
            '"version":"0123456789abcdef"}',
            "v: Input should be less than or equal to 1",
        ),
        (
            '{"v":true,"action":"ballast.ack","incident_id":42,"state":"triggered",'
            '"version":"0123456789abcdef"}',
            "v: Input should be a valid integer",
        ),
        ("x" * 2_001, "2001 characters, over Slack's 2000"),
    ],
)
def test_tampered_button_values_are_refused(raw: str, problem: str) -> None:
    with pytest.raises(ButtonValueError) as caught:
        ButtonValue.decode(raw)
    assert problem in str(caught.value)


def test_a_value_moved_to_another_button_is_refused() -> None:
    value = ButtonValue(
        action=ActionId.SKIP, incident_id=1, mitigation_id="m", state="not_run", version="0" * 16
    )
    with pytest.raises(
        ButtonValueError, match=r"is for ballast\.skip but was sent by a ballast\.run"
    ):
        ButtonValue.decode(value.encode(), expected=ActionId.RUN)


@pytest.mark.parametrize(
    "raw", ["other.run", "ballast.nope", "ballast.run:Bad Id", "ballast." + "x" * 300]
)
def test_foreign_action_ids_are_refused(raw: str) -> None:
    with pytest.raises(ButtonValueError):
        parse_action_id(raw)


values = st.builds(
    ButtonValue,
    action=st.sampled_from([a for a in ActionId if a.per_mitigation]),
    incident_id=st.integers(min_value=1, max_value=2**63 - 1),
    mitigation_id=st.from_regex(r"\A[a-z0-9][a-z0-9_-]{0,63}\Z"),
    state=st.from_regex(r"\A[a-z][a-z_]{0,31}\Z"),
    version=st.from_regex(r"\A[0-9a-f]{16}\Z"),
)


@given(values)
def test_button_value_round_trip(value: ButtonValue) -> None:
    raw = value.encode()
    assert len(raw) <= 2000
    assert ButtonValue.decode(raw, expected=value.action) == value
    kind, mitigation_id = parse_action_id(action_id(value.action, value.mitigation_id))
    assert (kind, mitigation_id) == (value.action, value.mitigation_id)


@given(st.text(max_size=3_000) | st.binary(max_size=300).map(lambda b: b.decode("latin-1")))
def test_decode_raises_only_button_value_error(raw: str) -> None:
    with contextlib.suppress(ButtonValueError):
        ButtonValue.decode(raw)


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(),
        lambda c: st.lists(c) | st.dictionaries(st.text(), c),
    )
)
def test_decode_of_arbitrary_json_raises_only_button_value_error(data: object) -> None:
    with contextlib.suppress(ButtonValueError):
        ButtonValue.decode(json.dumps(data))


def change_out(index: int, **fields: Any) -> ChangeOut:
    values: dict[str, Any] = {
        "id": index,
        "service": "support-assistant",
        "kind": "prompt",
        "version": f"v{index}",
        "previous": f"v{index - 1}",
        "by": "release-bot",
        "link": None,
        "note": "",
        "at": datetime(2026, 11, 27, 2, 48, tzinfo=UTC),
        "source": "api",
        "likely_cause": False,
        "minutes_before": 12.0,
        **fields,
    }
    return ChangeOut(**values)


def test_recent_ai_changes_are_shown_escaped_and_bounded(runbook: Runbook) -> None:
    changes = [
        change_out(1, likely_cause=True, link="https://ci.example.com/b/1?a=1&b=|x"),
        change_out(2, version="<!channel> <https://evil.example|re-auth>", by="<@U05KQ7J2M1P>"),
        change_out(3, minutes_before=-3.0, kind="model"),
        *(change_out(n, minutes_before=300.0) for n in range(4, 10)),
    ]
    message = render_incident(build_view(detail(changes=changes), runbook))
    [section_text] = [t for t in texts(message) if t.startswith("*Recent AI changes*")]
    lines = section_text.split("\n")
    assert lines[1] == (
        "• `prompt` `v0` → `v1` (<https://ci.example.com/b/1?a=1&amp;b=%7Cx|link>) by "
        "release-bot, 12 min before the first alert — _likely cause_"
    )
    assert "<!channel>" not in section_text
    assert "<https://evil.example" not in section_text
    assert "<@U05KQ7J2M1P>" not in section_text
    assert "&lt;!channel&gt;" in lines[2]
    assert lines[3].endswith("3 min after the first alert")
    assert "5.0 h before the first alert" in lines[4]
    assert lines[-1] == "…and 4 more"
    assert "Recent AI changes" not in " ".join(
        texts(render_incident(build_view(detail(), runbook)))
    )
