"""examples/alerts/: every sample parses, and reaches the runbook its README says it does."""

from __future__ import annotations

import json
import re

import pytest

from bot.runbooks.explain import explain_payload
from bot.runbooks.loader import load_catalog
from tests.conftest import REPO

EXAMPLES = REPO / "examples" / "alerts"
ROW = re.compile(r"^\| (?P<file>[\w.-]+\.json) \| (?P<source>\w+) \| (?P<runbooks>[^|]+) \|$")


def readme_table() -> dict[str, tuple[str, list[str | None]]]:
    table = {}
    for line in (EXAMPLES / "README.md").read_text(encoding="utf-8").splitlines():
        row = ROW.match(line)
        if row:
            runbooks = [None if r == "none" else r for r in row["runbooks"].split(", ")]
            table[row["file"]] = (row["source"], runbooks)
    return table


def test_the_readme_lists_every_sample() -> None:
    assert sorted(readme_table()) == sorted(p.name for p in EXAMPLES.glob("*.json"))


@pytest.mark.parametrize("name", sorted(readme_table()))
def test_a_sample_reaches_the_runbook_the_readme_names(name: str) -> None:
    catalog = load_catalog([REPO / "runbooks"]).catalog
    assert catalog is not None
    source, runbooks = readme_table()[name]
    explained = explain_payload(catalog, json.loads((EXAMPLES / name).read_bytes()))
    assert explained.source.value == source
    assert [alert.winner for alert in explained.alerts] == runbooks


def test_the_readme_commands_name_existing_samples() -> None:
    text = (EXAMPLES / "README.md").read_text(encoding="utf-8")
    named = re.findall(r"examples/alerts/([\w.-]+\.json)", text)
    assert named
    assert all((EXAMPLES / name).is_file() for name in named)
