"""``ballast runbooks validate``: PromQL syntax by the real promtool (one run for the whole
catalog, errors at the runbook's file:line:col) and scorecard panel names checked against
ballast.yaml with a did-you-mean; promtool absent is a note, not an error."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from bot.cli import build_cli
from bot.demo.stack import DEMO_SCORECARD
from bot.runbooks.loader import load_catalog
from bot.runbooks.promql_syntax import sample
from tests.conftest import need_binary

REPO = Path(__file__).resolve().parents[2]

RUNBOOK = """\
id: svc/tool-failure
title: "{{ labels.tool }} failing"
service: svc
severity: sev2
owners: ["@oncall"]
match: ['alertname="ToolFailing"']
symptom: Tool calls fail.
business_impact: Answers fail.
mitigations:
  - id: disable-tool
    title: Disable the tool
    action: disable_tool
    params: {service: svc, tool: "{{ labels.tool }}"}
    mode: auto
    verify:
      checks:
        - query: 'sum(rate(calls{tool="{{ labels.tool }}"}[5m]) by (tool'
          condition: "< 0.05"
        - query: |
            sum(
              rate(calls[5m])) )
          condition: "< 0.05"
        - query: 'sum(rate(calls{tool="{{ labels.tool }}"}[5m])) or vector(0)'
          condition: "< 0.05"
scorecard:
  show: [tool failure rte, groundedness]
  panels:
    - name: own panel
      query: "rate(calls[5m]) >"
      good: down
"""

CONFIG = {
    "services": {
        "svc": {
            "scorecard": [
                {"name": "tool failure rate", "query": "max(tool_error_ratio)", "good": "down"},
                {"name": "groundedness", "query": "avg(groundedness{", "good": "up"},
            ]
        }
    }
}


@pytest.fixture
def catalog(tmp_path: Path) -> tuple[Path, Path]:
    folder = tmp_path / "runbooks"
    folder.mkdir()
    (folder / "svc.yaml").write_text(RUNBOOK, encoding="utf-8")
    config = tmp_path / "ballast.yaml"
    config.write_text(yaml.safe_dump(CONFIG, sort_keys=False), encoding="utf-8")
    return folder, config


def validate(*args: str, **env: str) -> tuple[int, list[str]]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("BALLAST_")}
    result = CliRunner().invoke(build_cli(), ["runbooks", "validate", *args], env=environ | env)
    return result.exit_code, result.output.splitlines()


def column_of(path: Path, line: int, needle: str) -> int:
    return path.read_text(encoding="utf-8").splitlines()[line - 1].index(needle) + 1


def test_bad_queries_are_named_at_their_file_line_and_column(
    catalog: tuple[Path, Path], tmp_path: Path
) -> None:
    promtool = need_binary("promtool")
    folder, config = catalog
    runbook = folder / "svc.yaml"
    # A wrapper that counts its runs: the whole catalog and ballast.yaml in one.
    log = tmp_path / "runs.log"
    wrapper = tmp_path / "bin" / "promtool"
    wrapper.parent.mkdir()
    wrapper.write_text(f'#!/bin/sh\necho run >> "{log}"\nexec "{promtool}" "$@"\n')
    wrapper.chmod(0o755)
    path = f"{wrapper.parent}{os.pathsep}{os.environ.get('PATH', '')}"

    code, lines = validate(str(folder), "--config", str(config), PATH=path)

    assert code == 1
    assert log.read_text().splitlines() == ["run"]
    by = column_of(runbook, 17, " by (") + 1  # promtool points at `by`
    assert (
        f"{runbook}:17:{by}: mitigations[0].verify.checks[0].query: PromQL parse error: "
        "unexpected <by> in aggregation (promtool)"
    ) in lines
    multi = [line for line in lines if line.startswith(f"{runbook}:19:")]
    assert len(multi) == 1, lines  # a block scalar: at its start, with the query's own position
    assert "checks[1].query: PromQL parse error: unexpected right parenthesis" in multi[0]
    assert multi[0].endswith(" at line 2, column 21 of the query (promtool)")
    assert not any("checks[2]" in line for line in lines)  # the good one
    own = column_of(runbook, 29, "rate(")
    assert (
        f"{runbook}:29:{own + 17}: scorecard.panels[0].query: PromQL parse error: unexpected "
        "end of input (promtool)"
    ) in lines
    assert any(
        line.startswith(f"{config}:")
        and "services.svc.scorecard[1].query: PromQL parse error" in line
        for line in lines
    ), lines
    # The unknown panel name, with where and a did-you-mean; the known one passes.
    show = column_of(runbook, 26, "tool failure rte")
    assert (
        f"{runbook}:26:{show}: scorecard.show[0]: unknown panel 'tool failure rte': svc's "
        f"scorecard in {config} has no such panel; did you mean 'tool failure rate'?"
    ) in lines
    assert not any("'groundedness'" in line for line in lines)
    assert lines[-1] == "5 errors in 2 files"


def test_good_queries_pass_and_the_shipped_catalog_is_clean(tmp_path: Path) -> None:
    """The shipped runbooks against the demo's scorecard: every query parses, every name is
    a panel."""
    need_binary("promtool")
    demo_config = tmp_path / "ballast.yaml"
    demo_config.write_text(DEMO_SCORECARD, encoding="utf-8")
    code, lines = validate(str(REPO / "runbooks"), "--config", str(demo_config))
    assert code == 0, lines
    assert lines == [f"{len(list((REPO / 'runbooks').glob('*.yaml')))} runbooks valid"]


def test_without_promtool_the_syntax_is_skipped_with_a_note(
    catalog: tuple[Path, Path], tmp_path: Path
) -> None:
    folder, _ = catalog
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    code, lines = validate(str(folder), PATH=str(empty))
    assert not any("PromQL" in line for line in lines[:-1] if not line.startswith("note:"))
    assert "note: PromQL syntax of 4 queries not checked: promtool not found" in "\n".join(lines)
    assert (
        "note: 2 scorecard panel names not checked: give the ballast.yaml with --config "
        "(or BALLAST_CONFIG)"
    ) in lines
    assert code == 0, lines  # the rest of the runbook is valid
    assert lines[-1] == "1 runbook valid"


def test_a_service_without_a_scorecard_and_the_server_only_warns(
    catalog: tuple[Path, Path],
) -> None:
    folder, _ = catalog
    load = load_catalog([folder], panels={}, config_name="ballast.yaml")
    assert load.catalog is None
    assert [d.message for d in load.errors] == [
        "scorecard.show[0]: unknown panel 'tool failure rte': service 'svc' has no scorecard "
        "in ballast.yaml; define services.svc.scorecard there, or remove it",
        "scorecard.show[1]: unknown panel 'groundedness': service 'svc' has no scorecard in "
        "ballast.yaml; define services.svc.scorecard there, or remove it",
    ]
    served = load_catalog([folder], panels={"svc": ["x"]}, panel_severity="warning")
    assert served.catalog is not None  # a missing panel is not shown; the catalog still loads
    assert [d.severity for d in served.diagnostics] == ["warning", "warning"]
    assert "its panels: x" in served.diagnostics[0].message


def test_panels_are_not_templated(tmp_path: Path) -> None:
    text = RUNBOOK.replace('"rate(calls[5m]) >"', "'rate(calls{tool=\"{{ labels.tool }}\"}[5m])'")
    (tmp_path / "svc.yaml").write_text(text, encoding="utf-8")
    load = load_catalog([tmp_path])
    assert any("scorecard panels are not templated" in d.message for d in load.errors)
    assert all("scorecard.panels" not in s.where for s in load.queries)


def test_placeholders_become_same_length_sample_values() -> None:
    query = 'x{a="{{ labels.tool }}", b="{{ labels.x | upper }}"} > 1'
    assert sample(query) == 'x{a="' + "x" * 17 + '", b="' + "x" * 22 + '"} > 1'
    assert len(sample(query)) == len(query)


def test_promtool_that_fails_without_naming_a_query_is_a_note(
    catalog: tuple[Path, Path], tmp_path: Path
) -> None:
    folder, _ = catalog
    broken = tmp_path / "bin" / "promtool"
    broken.parent.mkdir()
    broken.write_text("#!/bin/sh\necho 'flag provided but not defined' >&2\nexit 3\n")
    broken.chmod(0o755)
    code, lines = validate(str(folder), PATH=str(broken.parent))
    assert "note: PromQL syntax of 4 queries not checked: promtool failed: flag provided" in (
        "\n".join(lines)
    )
    assert code == 0
    assert shutil.which("promtool", path=str(broken.parent)) == str(broken)


def test_promtool_that_cannot_run_or_names_no_position(tmp_path: Path) -> None:
    from bot.runbooks.promql_syntax import QuerySite, check_syntax

    site = QuerySite(tmp_path / "r.yaml", 3, 12, 19, "mitigations[0].verify.checks[0].query", "up")
    missing = check_syntax([site], promtool=str(tmp_path / "no-such-promtool"))
    assert missing.diagnostics == []
    assert missing.note is not None
    assert missing.note.startswith("PromQL syntax of 1 query not checked: promtool did not run")
    # A failure promtool reports without a position inside the query: at the query's start.
    fake = tmp_path / "promtool"
    fake.write_text(
        "#!/bin/sh\necho '  FAILED:'\n"
        'echo "$3: 3:11: group \\"ballast\\", rule 1, \\"ballast_query_0\\": bad rule"\n'
        'echo "$3: 9:1: group \\"ballast\\", rule 9, \\"ballast_query_9\\": not ours"\n'
        "exit 1\n"
    )
    fake.chmod(0o755)
    [found] = check_syntax([site], promtool=str(fake)).diagnostics
    assert (
        str(found)
        == f"{site.path}:3:12: mitigations[0].verify.checks[0].query: PromQL bad rule (promtool)"
    )
