"""scripts/check_self_contained.py: passes on this repository, and catches each kind of reference
to something outside it (spelt in pieces here, so that this file passes too)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

SCRIPT = REPO / "scripts" / "check_self_contained.py"
UP = ".." + "/"
SHARED = "shared" + "/fixtures"


def run(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), str(root)], capture_output=True, text=True, check=False
    )


def make_repo(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    subprocess.run(["git", "-C", str(root), "add", "-A"], check=True)
    return root


CLEAN = {
    "README.md": "See [the docs](docs/guide.md).\n",
    "docs/guide.md": f"Back to [the README]({UP}README.md); schema at `{UP}docs/schema.json`.\n",
    "docs/schema.json": "{}\n",
    "runbooks/a.yaml": f"# $schema={UP}docs/schema.json\n",
    "tests/conftest.py": "REPO = Path(__file__).resolve().parents[1]\n",
    "tests/fixtures/alerts/README.md": f"copied from {UP}{SHARED}/alerts\n",
}


def test_this_repository_is_self_contained() -> None:
    result = run(REPO)
    assert result.returncode == 0, result.stdout
    assert result.stdout == ""


def test_a_clean_tree_passes(tmp_path: Path) -> None:
    result = run(make_repo(tmp_path, CLEAN))
    assert (result.returncode, result.stdout) == (0, "")


@pytest.mark.parametrize(
    ("name", "line", "why"),
    [
        ("tests/test_x.py", f'AM = "{UP}{SHARED}/alerts"', "sibling checkout"),
        ("tests/conftest.py", "X = 1\nY = REPO" + ".parent", "above"),
        ("tests/conftest.py", "X = Path(__file__).resolve().parents" + "[2]", "parents[2]"),
        ("docs/guide.md", f"[elsewhere]({UP}{UP}other/README.md)", "not a file in the repo"),
        ("docs/guide.md", f"[gone]({UP}docs/missing.md)", "not a file in the repo"),
        ("README.md", "ballast replay /" + "work/alerts/a.json", "absolute path"),
        ("scripts/run", "cp /" + "home/me/fixtures/a.json .", "absolute path"),
    ],
)
def test_an_injected_reference_fails(tmp_path: Path, name: str, line: str, why: str) -> None:
    files = {**CLEAN, name: CLEAN.get(name, "") + line + "\n"}
    result = run(make_repo(tmp_path, files))
    assert result.returncode == 1
    lineno = len(files[name].splitlines())
    assert result.stdout.startswith(f"{name}:{lineno}: "), result.stdout
    assert why in result.stdout


def test_an_untracked_file_is_not_read(tmp_path: Path) -> None:
    make_repo(tmp_path, CLEAN)
    (tmp_path / "notes.md").write_text(f"{UP}shared\n", encoding="utf-8")
    assert run(tmp_path).returncode == 0
