"""The loader: every problem reported once, at the right path:line:col, with the fix."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actions import default_registry
from bot.runbooks.loader import load_catalog, runbook_files

TESTS = Path(__file__).resolve().parents[1]
EXAMPLE = TESTS / "example_runbook.yaml"
FIXTURES = TESTS / "fixtures" / "invalid_runbooks"
CASES = sorted(path.name for path in FIXTURES.iterdir() if not path.name.endswith(".expected"))


@pytest.mark.parametrize("case", CASES)
def test_invalid_runbook_fixture_reports_exactly_the_expected_lines(
    case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(FIXTURES)
    expected = Path(case.removesuffix(".yaml") + ".expected").read_text().splitlines()

    result = load_catalog([Path(case)])

    assert [str(d) for d in result.diagnostics] == expected
    has_errors = any(d.severity == "error" for d in result.diagnostics)
    assert (result.catalog is None) == has_errors


def test_every_fixture_has_expected_output_and_every_expected_file_a_fixture() -> None:
    expected = {p.name.removesuffix(".expected") for p in FIXTURES.glob("*.expected")}
    assert expected == {case.removesuffix(".yaml") for case in CASES}
    assert len(CASES) >= 14


def test_the_documented_example_is_valid() -> None:
    result = load_catalog([EXAMPLE])

    assert result.diagnostics == []
    assert result.catalog is not None
    assert list(result.catalog.runbooks) == ["support-assistant/tool-failure-spike"]
    assert result.catalog.path_of("support-assistant/tool-failure-spike") == EXAMPLE


def test_all_fixtures_at_once_report_the_union_and_give_no_catalog() -> None:
    together = load_catalog([FIXTURES])

    assert together.catalog is None
    files = {d.path.relative_to(FIXTURES).parts[0] for d in together.diagnostics}
    assert files >= {"bad_regex.yaml", "several_errors.yaml", "duplicate_runbook_id"}


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def example_with(**replacements: str) -> str:
    text = EXAMPLE.read_text()
    for old, new in replacements.items():
        assert old in text, old
        text = text.replace(old, new)
    return text


def test_folders_are_searched_recursively_skipping_underscore_and_dot_names(
    tmp_path: Path,
) -> None:
    keep = write(tmp_path, "team/a.yaml", "x: 1")
    keep_yml = write(tmp_path, "b.yml", "x: 1")
    write(tmp_path, "_shared.yaml", "x: 1")
    write(tmp_path, ".hidden/c.yaml", "x: 1")
    write(tmp_path, "_drafts/d.yaml", "x: 1")
    write(tmp_path, "README.md", "# not a runbook")
    explicit = write(tmp_path, "_explicit.yaml", "x: 1")

    files, problems = runbook_files([tmp_path, explicit])

    assert files == sorted([keep, keep_yml, explicit])
    assert problems == []


def test_missing_path_is_an_error_and_empty_folder_a_warning(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()

    result = load_catalog([tmp_path / "nope", tmp_path / "empty"])

    assert [(d.path.name, d.severity, d.message) for d in result.diagnostics] == [
        ("empty", "warning", "no runbook files (*.yaml, *.yml) here"),
        ("nope", "error", "no such file or folder; pass runbook files or folders"),
    ]
    assert result.catalog is None


def test_templated_params_are_checked_after_rendering_not_at_load(tmp_path: Path) -> None:
    text = example_with(
        **{
            'params: {service: "{{ labels.service }}", level: supervised}': (
                "params:\n"
                "      level: '{{ labels.level | default(\"supervised\") }}'\n"
                "      service: '{{ labels.service }}'"
            ),
            "mode: approve": "mode: manual",
        }
    )
    write(tmp_path, "rb.yaml", text)

    result = load_catalog([tmp_path])

    assert [str(d) for d in result.diagnostics] == []


def test_http_request_with_templates_inside_nested_params_loads(tmp_path: Path) -> None:
    text = example_with(
        **{
            "action: set_autonomy": "action: http_request",
            'params: {service: "{{ labels.service }}", level: supervised}': (
                "params:\n"
                "      url: 'https://flags.example.com/{{ labels.service }}/off'\n"
                "      json: {reason: '{{ annotations.summary | default(\"alert\") }}'}\n"
                "      undo: {url: '{{ annotations.undo_url }}', method: DELETE}\n"
                "      risk: low"
            ),
        }
    )
    write(tmp_path, "rb.yaml", text)

    result = load_catalog([tmp_path])

    assert [str(d) for d in result.diagnostics] == []


def test_a_match_item_holds_comma_separated_matchers_as_in_alertmanager(tmp_path: Path) -> None:
    lines = 'match:\n  - alertname="ToolCallFailureRate"\n  - service=~"support-.*"\n'
    one_item = 'match:\n  - \'{alertname="ToolCallFailureRate", service=~"support-.*",}\'\n'
    write(tmp_path, "lines/rb.yaml", EXAMPLE.read_text())
    write(tmp_path, "one_item/rb.yaml", example_with(**{lines: one_item}))

    as_lines = load_catalog([tmp_path / "lines"])
    as_one_item = load_catalog([tmp_path / "one_item"])

    assert as_one_item.diagnostics == []
    assert as_lines.catalog is not None
    assert as_one_item.catalog is not None
    [written_as_lines] = as_lines.catalog.runbooks.values()
    [written_as_one_item] = as_one_item.catalog.runbooks.values()
    assert written_as_one_item.match == [
        '{alertname="ToolCallFailureRate", service=~"support-.*",}'
    ]
    assert written_as_one_item.matchers == written_as_lines.matchers
    assert [str(m) for m in written_as_one_item.matchers] == [
        'alertname="ToolCallFailureRate"',
        'service=~"support-.*"',
    ]
    assert written_as_one_item.specificity == written_as_lines.specificity == 2


def test_an_unquoted_comma_splits_the_value_so_quote_values_that_hold_commas(
    tmp_path: Path,
) -> None:
    lines = 'match:\n  - alertname="ToolCallFailureRate"\n  - service=~"support-.*"\n'
    write(tmp_path, "rb.yaml", example_with(**{lines: "match:\n  - 'code=500,502'\n"}))

    result = load_catalog([tmp_path])

    assert [str(d) for d in result.diagnostics] == [
        f"{tmp_path / 'rb.yaml'}:7:15: match[0]: bad matcher format '502': a label name must "
        "start with a letter, _ or :, not '5'"
    ]


def test_anchors_and_merge_keys_keep_positions_of_explicit_keys(tmp_path: Path) -> None:
    text = example_with(
        **{
            "  - id: lower-autonomy\n": (
                "  - &base\n    id: lower-autonomy\n    <<: {title: merged title, action: notify}\n"
            ),
        }
    )
    path = write(tmp_path, "rb.yaml", text)

    result = load_catalog([path])

    # The explicit `action: set_autonomy` wins over the merged `notify`, so the only problem
    # left is none at all; a merged key is never a duplicate.
    assert [str(d) for d in result.diagnostics] == []
    assert result.catalog is not None
    mitigation = result.catalog.runbooks["support-assistant/tool-failure-spike"].mitigations[1]
    assert (mitigation.action, mitigation.title) == ("set_autonomy", "Drop to supervised autonomy")


def test_keys_are_text_as_written_so_yaml_1_1_booleans_stay_names(tmp_path: Path) -> None:
    text = example_with(**{"tool: web_search}}": "tool: web_search, on: 'yes'}}"})
    write(tmp_path, "rb.yaml", text)

    result = load_catalog([tmp_path])

    assert result.catalog is not None
    labels = result.catalog.runbooks["support-assistant/tool-failure-spike"].tests[0].alert.labels
    assert labels["on"] == "yes"


def test_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 7)]
    write(tmp_path, "bomb.yaml", "\n".join(lines))

    result = load_catalog([tmp_path])

    assert [d.message for d in result.diagnostics] == [
        "file expands to over 100000 YAML nodes (aliases?)"
    ]


def test_bytes_that_are_not_utf8_point_at_the_line(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_bytes(b"id: x\ntitle: \xff bad\n")

    result = load_catalog([tmp_path])

    assert [(d.line, d.col) for d in result.diagnostics] == [(2, 8)]
    assert "not valid UTF-8" in result.diagnostics[0].message


def test_reuses_one_registry_and_accepts_a_custom_one(tmp_path: Path) -> None:
    registry = default_registry(plugins=False)
    write(tmp_path, "rb.yaml", EXAMPLE.read_text())

    result = load_catalog([tmp_path], registry)

    assert result.catalog is not None


_TOKENS = [*"ab:-[]{}'\"#&*!|>%@`,?= \n\t\\", "{{", "}}", "{%", "\udcff", "<<", "---"]
_TOKENS += ["id", "match", "tests", "params", "level", "mode", "auto", "labels", "1h", "~"]
_YAMLISH = st.lists(st.sampled_from(_TOKENS), max_size=120).map("".join)


@st.composite
def mutated_example(draw: st.DrawFn) -> str:
    """The documented example with a few characters deleted, inserted or replaced."""
    text = EXAMPLE.read_text()
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(text)))
        cut = draw(st.integers(0, 6))
        piece = draw(st.lists(st.sampled_from(_TOKENS), max_size=4).map("".join))
        text = text[:at] + piece + text[at + cut :]
    return text


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(text=st.one_of(_YAMLISH, mutated_example()))
def test_loader_never_crashes_and_points_inside_the_file(tmp_path: Path, text: str) -> None:
    path = tmp_path / "fuzz.yaml"
    raw = text.encode("utf-8", errors="surrogateescape")
    path.write_bytes(raw)
    lines = raw.split(b"\n")

    result = load_catalog([path])

    assert result.catalog is not None or result.errors
    for diagnostic in result.diagnostics:
        assert diagnostic.path == path
        assert 1 <= diagnostic.line <= len(lines) + 1, diagnostic
        width = len(lines[diagnostic.line - 1]) if diagnostic.line <= len(lines) else 0
        assert 1 <= diagnostic.col <= width + 2, diagnostic
        assert "\n" not in diagnostic.message
        assert re.fullmatch(r".+:\d+:\d+: .+", str(diagnostic))
