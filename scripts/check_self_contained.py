#!/usr/bin/env python3
"""Fail if a tracked file refers to something outside the repository.

A clone in an empty folder must be complete: tests, scripts and docs may not read a sibling
checkout (``../shared``), the machine they were written on (``/work/...``, a home folder), or
walk above the repository root. Checked in every tracked text file except
``tests/fixtures/alerts/README.md`` (it cites where the payloads came from) and this script:

- ``../shared`` or ``shared/fixtures`` anywhere;
- a relative path starting with ``../`` (markdown links, ``$schema=`` lines, code) that names
  nothing tracked, taken from the file's own folder or, for prose about another file, from
  any tracked folder;
- an absolute path into a workspace or home folder (``/work/``, ``/home/``, ``/Users/``,
  ``/root/``);
- in Python, ``Path(__file__)...parents[N]`` above the repository root, or ``REPO.parent``.

Usage: ``scripts/check_self_contained.py [ROOT]`` (ROOT defaults to this repository). Prints one
line per finding, ``path:line: what``, and exits 1 if there is any.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path, PurePosixPath

EXEMPT = {"tests/fixtures/alerts/README.md", "scripts/check_self_contained.py"}
SIBLING = re.compile(r"\.\./shared\b|\bshared/fixtures\b")
# ``../x`` not preceded by a path or URL character (so ``a/../b`` inside a URL is left alone).
RELATIVE = re.compile(r"(?<![\w./:-])((?:\.\./)+)([\w.$@+-][\w./$@+-]*)?")
ABSOLUTE = re.compile(r"(?<![\w.~-])/(?:work|home|Users|root)/[\w.-]")
PARENTS = re.compile(r"__file__\)(?:\.resolve\(\))?\.parents\[(\d+)\]")
ROOT_PARENT = re.compile(r"\b(?:REPO|REPO_ROOT|ROOT)\.parents?\b")


def tracked(root: Path) -> list[str]:
    command = ["git", "-C", str(root), "ls-files", "-z"]
    out = subprocess.run(command, check=True, capture_output=True).stdout  # noqa: S603
    return [name for name in out.decode().split("\0") if name]


def findings(root: Path) -> list[str]:
    files = tracked(root)
    known = set(files) | {str(parent) for name in files for parent in PurePosixPath(name).parents}
    folders = sorted({PurePosixPath(name).parent for name in files})
    problems: list[str] = []
    for name in files:
        if name in EXEMPT:
            continue
        path = root / name
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, FileNotFoundError, IsADirectoryError):
            continue  # binary, or deleted in the work tree
        folder = PurePosixPath(name).parent
        for number, line in enumerate(text.splitlines(), 1):
            where = f"{name}:{number}"
            if SIBLING.search(line):
                problems.append(f"{where}: refers to a sibling checkout (../shared)")
            for match in RELATIVE.finditer(line):
                ups = match.group(1).count("../")
                rest = (match.group(2) or "").rstrip(".")
                if not any(_resolve(start, ups, rest) in known for start in (folder, *folders)):
                    problems.append(f"{where}: {match.group(0)!r} is not a file in the repository")
            if ABSOLUTE.search(line):
                problems.append(f"{where}: absolute path into a workspace or home folder")
            if name.endswith(".py"):
                for match in PARENTS.finditer(line):
                    if int(match.group(1)) > len(folder.parts):
                        problems.append(f"{where}: parents[{match.group(1)}] is above the repo")
                if ROOT_PARENT.search(line):
                    problems.append(f"{where}: reads above the repository root")
    return problems


def _resolve(folder: PurePosixPath, ups: int, rest: str) -> str | None:
    """``rest`` under the folder ``ups`` levels above ``folder``; ``None`` outside the repo."""
    if ups > len(folder.parts) or not rest:
        return None
    return str(PurePosixPath(*folder.parts[: len(folder.parts) - ups], rest))


def main(argv: list[str]) -> int:
    root = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parent.parent
    problems = findings(root)
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} reference(s) to files outside the repository", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
