"""States and kinds that are stored or compared are enum members, never string literals.

Scans ``bot/`` with ``ast`` for the two ways a literal sneaks back in: a ``kind=`` argument
given as a string (a timeline entry, a timer, an outbox row), and a ``.kind``, ``.status``,
``.state``, ``.mode`` or ``.outcome`` compared with a string. ``bot/store`` is left out: it
sits below the packages that own these enums and takes their values as the strings they are.
"""

from __future__ import annotations

import ast
from pathlib import Path

from bot.incidents.timeline import TimelineKind

REPO = Path(__file__).resolve().parents[1]
FIELDS = frozenset({"kind", "status", "state", "mode", "outcome"})


def _sources() -> list[Path]:
    return [p for p in sorted((REPO / "bot").rglob("*.py")) if "store" not in p.parts]


def _is_text(node: ast.expr) -> bool:
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str)
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return any(_is_text(e) for e in node.elts)
    return False


def literals(path: Path) -> list[str]:
    found = []
    where = path.relative_to(REPO) if path.is_relative_to(REPO) else path
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call):
            for keyword in node.keywords:
                if keyword.arg == "kind" and _is_text(keyword.value):
                    found.append(f"{where}:{node.lineno}: kind={ast.unparse(keyword.value)}")
        elif isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            named = [s for s in sides if isinstance(s, ast.Attribute) and s.attr in FIELDS]
            if named and any(_is_text(s) for s in sides):
                found.append(f"{where}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_no_state_or_kind_is_a_string_literal() -> None:
    found = [line for path in _sources() for line in literals(path)]
    assert not found, "use the enum member:\n" + "\n".join(found)


def test_the_scan_sees_both_forms(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        'append(kind="reminder")\n'
        'if entry.kind == "escalated": pass\n'
        'if row.status in ("firing", "resolved"): pass\n'
        "append(kind=TimelineKind.REMINDER)\n"
        "if entry.kind == TimelineKind.ESCALATED: pass\n"
    )
    assert [line.split(": ", 1)[1] for line in literals(sample)] == [
        "kind='reminder'",
        "entry.kind == 'escalated'",
        "row.status in ('firing', 'resolved')",
    ]


def test_one_timeline_kind_with_unique_values() -> None:
    values = [kind.value for kind in TimelineKind]
    assert len(values) == len(set(values))
    assert TimelineKind("mitigation_skipped") is TimelineKind.MITIGATION_SKIPPED


def test_the_read_models_execution_states_are_the_executions() -> None:
    """bot.incidents names the execution states it asks about (bot.execution, which owns the
    enum, sits below it); they must stay the enum's values."""
    from bot.execution.results import ExecutionState
    from bot.incidents import read_model

    assert ExecutionState.AWAITING_APPROVAL.value == read_model.AWAITING_APPROVAL
    assert ExecutionState.UNDONE.value == read_model.UNDONE
    assert ExecutionState.FAILED.value == read_model.FAILED
    assert read_model.NOT_RUN not in {state.value for state in ExecutionState}
