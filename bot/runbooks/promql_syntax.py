"""PromQL syntax of every query a catalog (and ballast.yaml's scorecards) will send, by promtool.

Ballast has no PromQL parser of its own; Prometheus's is the one that counts, and Debian's
``prometheus`` package ships it as ``promtool``. All queries go into one temporary rules file
(one recording rule each, named after its index) and one ``promtool check rules`` run, so
validating a large catalog costs one process, not one per query. promtool's ``line:col`` inside
a query is mapped back to the runbook file, exactly when the query is written on one line as is.

Template placeholders (``{{ labels.tool }}``) only ever sit inside a double-quoted string (the
loader checks that), so each is replaced by as many ``x`` as it is long: a harmless label value
that keeps every column where it was written. When promtool is not installed the check is
skipped with a note, never an error: the rest of validation still stands.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from bot.errors import Diagnostic
from bot.runbooks.schema_errors import where
from bot.runbooks.yaml_positions import DataPath, PositionedDocument

PROMTOOL_TIMEOUT = 60.0  # seconds for the whole catalog; far above the ~0.1 s it takes
_PLACEHOLDER = re.compile(r"\{\{.*?\}\}", re.DOTALL)
_RECORD = "ballast_query_"
# /tmp/x.yaml: 7:11: group "g", rule 2, "ballast_query_1": could not parse expression: 1:17: …
_FAILURE = re.compile(
    rf'"{_RECORD}(?P<index>\d+)": (?:could not parse expression: )?'
    r"(?:(?P<line>\d+):(?P<col>\d+): )?(?P<message>.*)\Z"
)


@dataclass(frozen=True, slots=True)
class QuerySite:
    """One PromQL query and where it was written."""

    path: Path
    line: int
    col: int
    first: int | None  # column of the query's first character, if written on one line as is
    where: str  # e.g. mitigations[0].verify.checks[0].query
    text: str

    def at(self, line: int, col: int, message: str) -> Diagnostic:
        """A diagnostic at promtool's ``line:col`` inside the query: exact when the query is
        one line written as is, else at the query's start, saying where inside it."""
        if line == 1 and self.first is not None:
            return Diagnostic(self.path, self.line, self.first + col - 1, f"{message} (promtool)")
        inside = f" at line {line}, column {col} of the query" if line else ""
        return Diagnostic(self.path, self.line, self.col, f"{message}{inside} (promtool)")


def query_site(doc: PositionedDocument, loc: DataPath, text: str) -> QuerySite:
    line, col = doc.position(loc)
    return QuerySite(doc.path, line, col, doc.content_column(loc), where(loc), text)


def sample(text: str) -> str:
    """The query with each ``{{ … }}`` replaced by a same-length harmless label value."""
    return _PLACEHOLDER.sub(lambda found: "x" * len(found.group()), text)


@dataclass(frozen=True, slots=True)
class SyntaxCheck:
    """What the check found, and why it did not run (``note``), if it did not."""

    diagnostics: list[Diagnostic]
    note: str | None = None


def check_syntax(sites: Sequence[QuerySite], promtool: str | None = None) -> SyntaxCheck:
    """Check every query with one ``promtool check rules`` run."""
    if not sites:
        return SyntaxCheck([])
    tool = promtool or shutil.which("promtool")
    count = f"{len(sites)} {'query' if len(sites) == 1 else 'queries'}"
    skipped = f"PromQL syntax of {count} not checked"
    if tool is None:
        return SyntaxCheck(
            [], f"{skipped}: promtool not found (install Debian's prometheus package)"
        )
    rules = [
        {"record": f"{_RECORD}{index}", "expr": sample(site.text)}
        for index, site in enumerate(sites)
    ]
    document = yaml.safe_dump({"groups": [{"name": "ballast", "rules": rules}]}, width=1 << 30)
    with tempfile.TemporaryDirectory(prefix="ballast-promql-") as scratch:
        path = Path(scratch, "queries.yaml")
        path.write_text(document, encoding="utf-8")
        try:
            done = subprocess.run(  # noqa: S603 - promtool found on PATH, argv as a list
                [tool, "check", "rules", str(path)],
                capture_output=True,
                text=True,
                timeout=PROMTOOL_TIMEOUT,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as err:
            return SyntaxCheck([], f"{skipped}: promtool did not run ({err})")
    found = _failures(sites, done.stdout + "\n" + done.stderr)
    if done.returncode != 0 and not found:
        last = (done.stderr.strip() or done.stdout.strip()).splitlines()[-1:]
        return SyntaxCheck([], f"{skipped}: promtool failed: {' '.join(last) or done.returncode}")
    return SyntaxCheck(found)


def _failures(sites: Sequence[QuerySite], output: str) -> list[Diagnostic]:
    found: list[Diagnostic] = []
    for raw in output.splitlines():
        match = _FAILURE.search(raw)
        if match is None or int(match["index"]) >= len(sites):
            continue
        site = sites[int(match["index"])]
        message = f"{site.where}: PromQL {match['message'].strip()}"
        line, col = int(match["line"] or 0), int(match["col"] or 0)
        found.append(site.at(line, col, message))
    return found
