"""Every pattern Python's ``re`` evaluates is a full match: ``$`` also matches before a final
newline, so ``^key$`` accepted ``audit-svc.autonomy\\n`` (issue 14). Patterns end with ``\\Z`` or
are used through ``fullmatch``; pydantic's ``pattern=`` (Rust's engine, where ``$`` is the end of
the text) is not ``re`` and may keep ``$``.

The scan reads every string literal passed to an ``re`` function in ``bot/`` and ``actions/``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
_RE_FUNCTIONS = {"compile", "match", "search", "fullmatch", "sub", "subn", "split", "findall"}


def _pattern_text(node: ast.expr) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        tail = node.values[-1] if node.values else None
        if isinstance(tail, ast.Constant) and isinstance(tail.value, str):
            return tail.value
    return None


def _sources() -> list[Path]:
    return sorted([*REPO.glob("bot/**/*.py"), *REPO.glob("actions/**/*.py")])


def _dollar_anchored(paths: list[Path]) -> Iterator[str]:
    for path in paths:
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "re"
                and node.func.attr in _RE_FUNCTIONS
                and node.args
            ):
                continue
            text = _pattern_text(node.args[0])
            if text is not None and text.endswith("$") and not text.endswith("\\$"):
                yield f"{path.name}:{node.lineno}: {text!r}"


def test_no_re_pattern_ends_with_dollar() -> None:
    found = list(_dollar_anchored(_sources()))
    assert not found, "use \\Z or fullmatch instead of $:\n" + "\n".join(found)


def test_the_scan_finds_a_dollar_anchor(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        'import re\nA = re.compile(r"^[a-z]+$")\nB = re.compile(rf"^{A}x\\Z")\n'
        'C = re.fullmatch(r"cost \\$", "x")\n'
    )
    assert [line.split(":")[1] for line in _dollar_anchored([sample])] == ["2"]
