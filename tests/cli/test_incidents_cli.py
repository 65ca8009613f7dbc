"""``ballast replay`` and ``ballast incidents list|show`` against a real SQLite file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bot.cli import build_cli
from tests.conftest import FIXTURES

AM = FIXTURES / "alertmanager-captured"
RUNBOOKS = Path(__file__).resolve().parents[1] / "api" / "runbooks"


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("BALLAST_DATABASE_URL", f"sqlite:///{tmp_path / 'ballast.db'}")
    monkeypatch.setenv("BALLAST_RUNBOOKS", str(RUNBOOKS))
    return tmp_path


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(build_cli(), list(args))
    return result.exit_code, result.output


def test_ack_resolve_and_comment_ask_for_the_state_not_the_alerts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What they print is the incident's state: the answer they ask for carries none of a
    storm incident's alerts, nor the entries they left (the API's limits, at 0)."""
    import httpx

    asked: list[str] = []

    def request(method: str, url: str, **_: Any) -> httpx.Response:
        asked.append(url)
        state = {"id": 7, "status": "acknowledged", "title": "Tool failing", "firing_count": 3}
        state |= {"alert_count": 50_000, "timeline": [{}] * 4, "timeline_omitted": 50_020}
        return httpx.Response(200, json=state)

    monkeypatch.setattr(httpx, "request", request)
    url = ("--url", "http://ballast.test")
    assert run("incidents", "ack", "7", *url) == (
        0,
        "#7 acknowledged: Tool failing (3/50000 firing)\n",
    )
    assert run("incidents", "comment", "7", "vendor down", *url) == (
        0,
        "#7: comment added (50024 timeline entries)\n",
    )
    assert run("incidents", "resolve", "7", *url)[0] == 0
    state = "?alerts_limit=0&alert_entries_limit=0"
    assert asked == [
        f"http://ballast.test/api/v1/incidents/7/{path}{state}"
        for path in ("acknowledge", "comments", "resolve")
    ]


def test_replay_then_list_and_show(cli_env: Path) -> None:
    code, out = run(
        "replay",
        str(AM / "firing-group-2-alerts.json"),
        str(AM / "firing-group-2-alerts.json"),
        str(AM / "resolved-group.json"),
    )
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0].endswith("firing-group-2-alerts.json: 2 alert(s), 2 new, 0 duplicate")
    assert lines[1].endswith("firing-group-2-alerts.json: 2 alert(s), 0 new, 2 duplicate")
    assert "#1 triggered  checkout/high-error-rate" in lines[-1]

    code, out = run("incidents", "list", "--json")
    assert code == 0
    [incident] = json.loads(out)["incidents"]
    # resolved-group.json resolves checkout-2 and -3 (first seen resolved); checkout-1 fires.
    assert (incident["alert_count"], incident["firing_count"]) == (3, 1)

    code, out = run("incidents", "list", "--status", "resolved")
    assert (code, out.strip()) == (0, "no incidents")

    code, out = run("incidents", "list")
    header, row = out.splitlines()
    assert header.split() == [
        "ID", "STATUS", "SEVERITY", "FIRING", "OPENED", "(UTC)", "SERVICE", "RUNBOOK", "TITLE"
    ]  # fmt: skip
    assert row.split()[:4] == ["#1", "triggered", "sev2", "1/3"]
    assert row.index("checkout/high-error-rate") == header.index("RUNBOOK")
    assert row.endswith("Checkout errors high on checkout")
    for option, value, expected in [
        ("--service", "checkout", 1),
        ("--service", "billing", 0),
        ("--runbook", "checkout/high-error-rate", 1),
        ("--runbook", "platform/high-memory", 0),
    ]:
        code, out = run("incidents", "list", "--json", option, value)
        assert (code, len(json.loads(out)["incidents"])) == (0, expected), (option, value)

    code, out = run("incidents", "show", "1")
    assert code == 0
    assert out.splitlines()[0] == "#1 Checkout errors high on checkout"
    assert "runbook checkout/high-error-rate" in out
    assert "Opened from alertmanager alert HighErrorRate" in out

    code, out = run("incidents", "show", "1", "--json")
    assert json.loads(out)["timeline"][0]["kind"] == "opened"


def test_show_unknown_incident_fails_cleanly(cli_env: Path) -> None:
    assert run("db", "upgrade")[0] == 0
    code, out = run("incidents", "show", "42")
    assert code == 1
    assert "incident 42 does not exist" in out


def test_replay_detects_pagerduty_datadog_and_opsgenie(cli_env: Path) -> None:
    code, out = run(
        "replay",
        str(FIXTURES / "pagerduty" / "zulip-triggered-v3.json"),
        str(FIXTURES / "pagerduty" / "zulip-acknowledged-v3.json"),
        str(FIXTURES / "datadog" / "fluffy-metric-alert-triggered.json"),
        str(FIXTURES / "opsgenie" / "zulip-create.json"),
    )
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0].endswith("zulip-triggered-v3.json: 1 alert(s), 1 new, 0 duplicate")
    assert lines[1].endswith("zulip-acknowledged-v3.json: 0 alert(s), 0 new, 0 duplicate")
    titles = sorted(line.split(" firing: ", 1)[1] for line in lines[4:])
    assert titles == [
        "Untriaged alert: Dock is almost out of memory...",
        "Untriaged alert: Test Incident 3",
        "Untriaged alert: another alert",
    ]


def test_replay_rejects_bad_payload_with_its_path(cli_env: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"alerts": [{"labels": {"alertname": 3}}]}')
    code, out = run("replay", str(bad), "--source", "generic")
    assert code == 1
    assert str(bad) in out
    assert "alerts[0]" in out


@pytest.mark.parametrize(
    "args",
    [
        ["incidents", "list"],
        ["incidents", "show", "1"],
        ["controls", "list"],
        ["controls", "history", "support.model"],
        ["controls", "set", "support.model", "x", "--actor", "bob"],
        ["postmortem", "1"],
        ["db", "current"],
    ],
)
def test_commands_on_a_missing_database_say_where_they_looked(
    cli_env: Path, args: list[str]
) -> None:
    """Run in the wrong folder, a command must not create an empty database and report on it."""
    code, out = run(*args)
    database = cli_env / "ballast.db"
    assert code == 1
    assert f"no Ballast database at {database} (BALLAST_DATABASE_URL=sqlite:///{database})" in out
    assert "--database-url / BALLAST_DATABASE_URL" in out
    assert not database.exists()
    assert sorted(p.name for p in cli_env.iterdir()) == []


def test_default_url_is_named_as_relative_to_the_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BALLAST_DATABASE_URL", raising=False)
    code, out = run("incidents", "list")
    assert code == 1
    expected = tmp_path / "data" / "ballast.db"
    assert f"no Ballast database at {expected} (the default URL, relative to this folder)" in out
    assert not (tmp_path / "data").exists()


def test_db_upgrade_then_current(cli_env: Path) -> None:
    database = cli_env / "ballast.db"
    code, out = run("db", "upgrade")
    assert code == 0, out
    head = out.split()[-1]
    assert (
        out.strip() == f"sqlite+aiosqlite:///{database}: upgraded from revision (empty) to {head}"
    )
    code, out = run("db", "upgrade")
    assert (code, out.strip()) == (
        0,
        f"sqlite+aiosqlite:///{database}: already at revision {head}, nothing to do",
    )
    code, out = run("db", "current")
    assert (code, out.strip()) == (
        0,
        f"sqlite+aiosqlite:///{database}: revision {head}, up to date",
    )


def test_show_lists_a_part_of_a_storm_incident_unless_told(cli_env: Path) -> None:
    """A storm incident: the text view lists a part of its alerts and of their entries and
    says how many it left out; ``--json`` prints everything unless limited."""
    alerts = [
        {
            "labels": {"alertname": "HighErrorRate", "service": "checkout", "pod": f"p{n:03d}"},
            "starts_at": "2026-11-27T02:00:00Z",
        }
        for n in range(30)
    ]
    storm = cli_env / "storm.json"
    storm.write_text(json.dumps({"alerts": alerts}))
    code, out = run("replay", "--source", "generic", str(storm))
    assert code == 0, out

    code, out = run("incidents", "show", "1", "--alerts", "5", "--alert-entries", "4")
    assert code == 0, out
    assert "alerts 30/30 firing" in out
    assert out.count("    firing   ") == 5
    assert "... 25 more (--alerts N lists more)" in out
    assert "... 26 older entries of alerts firing" in out
    assert out.count("HighErrorRate firing") == 4  # the newest entries of the alerts
    assert "Opened from generic alert HighErrorRate" in out  # every other entry is listed

    code, out = run("incidents", "show", "1", "--json")
    whole = json.loads(out)
    assert (len(whole["alerts"]), whole["alerts_omitted"], whole["timeline_omitted"]) == (30, 0, 0)
    code, out = run("incidents", "show", "1", "--json", "--alerts", "2", "--alert-entries", "1")
    part = json.loads(out)
    assert (len(part["alerts"]), part["alerts_omitted"]) == (2, 28)
    assert part["timeline_omitted"] == 29
    assert len(part["timeline"]) == len(whole["timeline"]) - 29
