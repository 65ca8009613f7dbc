"""The permissions tables of docs/security.md, read for the tests that try every cell.

Each table follows a ``<!-- permissions: NAME -->`` marker: a header row naming the callers
(or relations), a rule, then one row per endpoint, command or button. The tests that read them
(tests/auth/test_permissions.py, tests/auth/test_slack_permissions.py,
tests/web/test_permissions.py) fail when the table and the app disagree, so the document is
the contract.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import REPO

SECURITY = REPO / "docs" / "security.md"


def table_cells(marker: str, path: Path = SECURITY) -> tuple[list[str], list[list[str]]]:
    """The header's columns after the first, and each body row's cells, of the table after
    ``<!-- permissions: {marker} -->``."""
    lines = path.read_text(encoding="utf-8").splitlines()
    start = lines.index(f"<!-- permissions: {marker} -->") + 1
    table = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        table.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    header, _rule, *body = table
    return header[1:], body


@dataclass(frozen=True)
class EndpointRow:
    """One HTTP row: ``METHOD /path/{placeholder}`` and the expected answer per caller."""

    method: str
    path: str
    cells: dict[str, str]
    values: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    @property
    def url(self) -> str:
        url = self.path
        for name, value in self.values.items():
            url = url.replace(name, value)
        return url


def endpoint_rows(marker: str, callers: list[str], values: dict[str, str]) -> list[EndpointRow]:
    """The rows of an HTTP table whose columns must be exactly ``callers``."""
    columns, body = table_cells(marker)
    assert columns == callers, columns
    rows = []
    for cells in body:
        method, path = cells[0].strip("`").split(" ", 1)
        answers = dict(zip(columns, cells[1:], strict=True))
        rows.append(EndpointRow(method, path, answers, values))
    return rows
