"""``ballast runbooks ...``: exact output and exit codes, as CI and editors see them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from actions import default_registry
from bot.cli import build_cli
from bot.cli.runbooks import runbook_json_schema

TESTS = Path(__file__).resolve().parents[1]
REPO = TESTS.parent
EXAMPLE = TESTS / "example_runbook.yaml"
FIXTURES = TESTS / "fixtures" / "invalid_runbooks"

ALERTMANAGER_BODY = {
    "version": "4",
    "groupKey": '{}:{alertname="ToolCallFailureRate"}',
    "status": "firing",
    "receiver": "ballast",
    "groupLabels": {"alertname": "ToolCallFailureRate"},
    "commonLabels": {},
    "commonAnnotations": {},
    "externalURL": "http://alertmanager:9093",
    "alerts": [
        {
            "status": "firing",
            "labels": {
                "alertname": "ToolCallFailureRate",
                "service": "billing-bot",
                "tool": "web_search",
            },
            "annotations": {},
            "startsAt": "2024-01-01T00:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph",
            "fingerprint": "0123456789abcdef",
        }
    ],
}


def run(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(build_cli(), ["runbooks", *args], input=stdin)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def test_validate_a_valid_runbook_exits_0() -> None:
    code, out, _ = run("validate", str(EXAMPLE))

    assert (code, out) == (0, "1 runbook valid\n")


def test_validate_prints_every_problem_and_a_summary_and_exits_1(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(FIXTURES)

    code, out, _ = run("validate", "unknown_action.yaml", "bad_regex.yaml")

    assert code == 1
    expected = Path("bad_regex.expected").read_text() + Path("unknown_action.expected").read_text()
    assert out == expected + "4 errors in 2 files\n"


def test_validate_counts_warnings_without_failing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(FIXTURES)

    code, out, _ = run("validate", "overlapping_runbooks")

    assert code == 0
    assert out == (
        Path("overlapping_runbooks.expected").read_text() + "2 runbooks valid, 2 warnings\n"
    )


def test_validate_defaults_to_the_runbooks_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "runbooks").mkdir()
    shutil.copy(EXAMPLE, tmp_path / "runbooks" / "tool-failure.yaml")
    monkeypatch.chdir(tmp_path)

    assert run("validate") == (0, "1 runbook valid\n", "")


def test_test_prints_one_line_per_case_and_exits_0_when_all_pass() -> None:
    code, out, _ = run("test", str(EXAMPLE))

    assert code == 0
    assert out == (
        "PASS support-assistant/tool-failure-spike case 1: matched, title ok\n"
        "PASS support-assistant/tool-failure-spike case 2: not matched\n"
        "2 cases passed\n"
    )


def test_test_exits_1_when_a_case_fails(tmp_path: Path) -> None:
    text = EXAMPLE.read_text().replace(
        "title: web_search tool calls failing for support-assistant",
        "title: something else",
    )
    (tmp_path / "rb.yaml").write_text(text)

    code, out, _ = run("test", str(tmp_path))

    assert code == 1
    assert out.splitlines() == [
        "FAIL support-assistant/tool-failure-spike case 1: title: expected 'something else', "
        "got 'web_search tool calls failing for support-assistant'",
        "PASS support-assistant/tool-failure-spike case 2: not matched",
        "1 of 2 cases failed",
    ]


def test_test_exits_1_with_the_diagnostics_when_the_catalog_does_not_load(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(FIXTURES)

    code, out, _ = run("test", "duplicate_runbook_id")

    assert code == 1
    assert out == Path("duplicate_runbook_id.expected").read_text() + "1 error in 1 file\n"


def test_the_example_and_an_overlapping_runbook_are_tested_against_each_other(
    tmp_path: Path,
) -> None:
    shutil.copy(EXAMPLE, tmp_path / "example.yaml")
    (tmp_path / "greedy.yaml").write_text(
        EXAMPLE.read_text()
        .replace("support-assistant/tool-failure-spike", "support-assistant/greedy")
        .replace('  - service=~"support-.*"\n', '  - service=~"support-.*"\n  - tool!=""\n')
    )

    code, out, _ = run("test", str(tmp_path))

    assert code == 1
    assert (
        "FAIL support-assistant/tool-failure-spike case 1: expected match, but "
        "support-assistant/greedy won (3 matchers to 2)"
    ) in out.splitlines()


def test_explain_reads_a_file_and_detects_the_source(tmp_path: Path) -> None:
    body = tmp_path / "alert.json"
    body.write_text(json.dumps(ALERTMANAGER_BODY))

    code, out, _ = run("explain", str(body), "--runbooks", str(EXAMPLE))

    assert code == 0
    assert out.splitlines() == [
        "source: alertmanager, 1 alert",
        "",
        'alert 1: {alertname="ToolCallFailureRate", service="billing-bot", tool="web_search"}',
        "  handled by: no runbook",
        "  support-assistant/tool-failure-spike: does not match (2 matchers)",
        '    match  alertname="ToolCallFailureRate"  alert has alertname="ToolCallFailureRate"',
        '    miss   service=~"support-.*"            alert has service="billing-bot"',
    ]


def test_explain_reads_stdin_with_an_explicit_source() -> None:
    body = {"labels": {"alertname": "ToolCallFailureRate", "service": "support-assistant"}}

    code, out, _ = run(
        "explain", "-", "--source", "generic", "--runbooks", str(EXAMPLE), stdin=json.dumps(body)
    )

    assert code == 0
    assert "  handled by: support-assistant/tool-failure-spike" in out.splitlines()
    assert "  support-assistant/tool-failure-spike: matches and wins (2 matchers)" in out


@pytest.mark.parametrize(
    ("stdin", "message"),
    [
        ("{not json", "ballast: -: "),
        ('{"alerts": 5}', "ballast: -: "),
    ],
)
def test_explain_bad_input_exits_1_with_a_message_on_stderr(stdin: str, message: str) -> None:
    code, out, err = run(
        "explain", "-", "--source", "alertmanager", "--runbooks", str(EXAMPLE), stdin=stdin
    )

    assert code == 1
    assert out == ""
    assert err.startswith(message)


ALERT_FIXTURES = TESTS / "fixtures" / "alerts"


@pytest.mark.parametrize(
    ("fixture", "source", "first_alert"),
    [
        (
            "pagerduty/zulip-triggered-v3.json",
            "pagerduty",
            'alert 1: {alertname="Test Incident 3", pagerduty_service_id="PA2P440", '
            'service="pig208", severity="critical"}',
        ),
        (
            "opsgenie/zulip-create.json",
            "opsgenie",
            'alert 1: {alertname="another alert", service="Server"}',
        ),
        (
            "datadog/relay-default-payload-test-notification.json",
            "datadog",
            'alert 1: {alertname="[TEST] Host Cluster Alert"}',
        ),
    ],
)
def test_explain_detects_the_other_senders(fixture: str, source: str, first_alert: str) -> None:
    code, out, _ = run("explain", str(ALERT_FIXTURES / fixture), "--runbooks", str(EXAMPLE))

    assert code == 0, out
    lines = out.splitlines()
    assert lines[0] == f"source: {source}, 1 alert"
    assert lines[2] == first_alert


def test_explain_of_an_ignored_event_says_no_alerts() -> None:
    fixture = ALERT_FIXTURES / "pagerduty" / "zulip-acknowledged-v3.json"
    code, out, _ = run("explain", str(fixture), "--runbooks", str(EXAMPLE))

    assert code == 0, out
    assert out.splitlines()[0] == "source: pagerduty, 0 alerts"


def test_explain_refuses_a_catalog_with_errors(tmp_path: Path) -> None:
    body = tmp_path / "alert.json"
    body.write_text(json.dumps(ALERTMANAGER_BODY))

    code, out, err = run("explain", str(body), "--runbooks", str(FIXTURES / "bad_regex.yaml"))

    assert code == 1
    assert out.count("bad_regex.yaml:") == 2
    assert "fix them before explaining matches" in err


def test_schema_is_json_schema_of_a_runbook_and_matches_the_committed_copy() -> None:
    code, out, _ = run("schema")

    assert code == 0
    schema = json.loads(out)
    assert schema["title"] == "Ballast runbook"
    assert schema["description"]
    assert set(schema["required"]) >= {"id", "title", "match", "owners"}
    committed = REPO / "docs" / "runbook.schema.json"
    assert committed.read_text() == out, "run: ballast runbooks schema > docs/runbook.schema.json"
    assert json.loads(committed.read_text()) == runbook_json_schema(default_registry(plugins=False))


def test_schema_lists_actions_and_types_their_params_but_allows_templates() -> None:
    schema = runbook_json_schema(default_registry(plugins=False))
    mitigation = schema["$defs"]["Mitigation"]

    assert "disable_tool" in mitigation["properties"]["action"]["enum"]
    rule = next(
        r
        for r in mitigation["allOf"]
        if r["if"]["properties"]["action"] == {"const": "set_autonomy"}
    )
    params = schema["$defs"][rule["then"]["properties"]["params"]["$ref"].split("/")[-1]]
    assert params["additionalProperties"] is False
    assert params["properties"]["level"]["anyOf"][1] == {"$ref": "#/$defs/Template"}
