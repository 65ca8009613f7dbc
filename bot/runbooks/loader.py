"""Load runbook files into a :class:`Catalog`, reporting every problem as ``path:line:col``.

One runbook per ``*.yaml``/``*.yml`` file, found recursively; names starting with ``_`` or
``.`` are skipped (shared snippets, editor files). Each file goes through three steps:

1. :mod:`bot.runbooks.yaml_positions` parses it, keeping the line and column of every value;
2. :mod:`bot.runbooks.checks` validates it against the schema and beyond (matchers,
   templates, escalation order; :mod:`bot.runbooks.mitigation_checks` for actions, params
   and risk), with pydantic errors put in an author's words by
   :mod:`bot.runbooks.schema_errors`;
3. here, across files: duplicate runbook ids, and warnings for runbooks that cannot be
   indexed or that also match another runbook's example alert.

One bad file fails the whole catalog; every diagnostic of every file is still reported.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from actions import ActionRegistry, default_registry
from bot.errors import Diagnostic
from bot.runbooks.checks import check_panel_names, check_runbook, check_shape, query_sites
from bot.runbooks.mitigation_checks import params_problems
from bot.runbooks.promql_syntax import QuerySite
from bot.runbooks.schema import ExpectOutcome, Runbook
from bot.runbooks.schema_errors import where
from bot.runbooks.snapshot import Catalog
from bot.runbooks.yaml_positions import read_document

__all__ = ["CatalogLoad", "load_catalog", "params_problems", "runbook_files", "where"]

_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True, slots=True)
class CatalogLoad:
    """What a load produced: the catalog (``None`` if any error) and every diagnostic, sorted."""

    catalog: Catalog | None
    diagnostics: list[Diagnostic]
    queries: tuple[QuerySite, ...] = ()  # every PromQL query, for the syntax check
    unchecked_panels: int = 0  # names in scorecard.show not checked: no panels were given

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "warning"]


def load_catalog(
    paths: Sequence[Path],
    registry: ActionRegistry | None = None,
    panels: Mapping[str, Sequence[str]] | None = None,
    config_name: str = "ballast.yaml",
    panel_severity: str = "error",
) -> CatalogLoad:
    """Load and validate every runbook under ``paths``; one bad file fails the whole catalog.

    ``panels`` (service → scorecard panel names, from ``config_name``) checks the names
    runbooks pick in ``scorecard.show``; without it they are counted as unchecked. A running
    server passes ``panel_severity="warning"``: a missing panel is only not shown, and
    ballast.yaml and the runbooks change apart, so it does not refuse a catalog for it.
    """
    registry = registry if registry is not None else default_registry()
    files, diagnostics = runbook_files(paths)
    loaded: list[_Loaded] = []
    first_id: dict[str, str] = {}
    queries: list[QuerySite] = []
    unchecked = 0
    for path in files:
        # Node trees are dropped file by file: keeping 1,000 of them alive makes the garbage
        # collector rescan them all and triples the load time.
        doc = read_document(path, diagnostics)
        if doc is None or not check_shape(doc, diagnostics):
            continue
        runbook = check_runbook(doc, registry, diagnostics)
        queries.extend(query_sites(doc))
        if runbook is not None and runbook.scorecard.show:
            if panels is None:
                unchecked += len(runbook.scorecard.show)
            else:
                check_panel_names(doc, runbook, panels, config_name, diagnostics, panel_severity)
        runbook_id = doc.data.get("id")
        if isinstance(runbook_id, str):
            if runbook_id in first_id:
                diagnostics.append(
                    doc.diagnostic(
                        ("id",),
                        f"duplicate runbook id {runbook_id!r}: already defined in "
                        f"{first_id[runbook_id]}; give each runbook its own id",
                    )
                )
                continue
            line, col = doc.position(("id",))
            first_id[runbook_id] = f"{path}:{line}:{col}"
        if runbook is not None:
            examples = [doc.position(("tests", i, "alert")) for i in range(len(runbook.tests))]
            loaded.append(_Loaded(path, runbook, doc.position(("match",)), examples))
    catalog = Catalog((item.runbook for item in loaded), {i.runbook.id: i.path for i in loaded})
    diagnostics.extend(_overlaps(catalog, loaded))
    failed = any(d.severity == "error" for d in diagnostics)
    return CatalogLoad(
        None if failed else catalog, sorted(set(diagnostics)), tuple(queries), unchecked
    )


@dataclass(frozen=True, slots=True)
class _Loaded:
    path: Path
    runbook: Runbook
    match: tuple[int, int]  # where `match:` is, and each test's `alert:`, for warnings
    examples: list[tuple[int, int]]


def runbook_files(paths: Sequence[Path]) -> tuple[list[Path], list[Diagnostic]]:
    """The runbook files under ``paths``, sorted; files named explicitly are always included."""
    found: set[Path] = set()
    problems: list[Diagnostic] = []
    for root in map(Path, paths):
        if root.is_file():
            found.add(root)
        elif root.is_dir():
            before = len(found)
            for folder, subfolders, names in os.walk(root):
                subfolders[:] = [name for name in subfolders if not name.startswith(("_", "."))]
                found.update(
                    Path(folder, name)
                    for name in names
                    if name.endswith(_SUFFIXES) and not name.startswith(("_", "."))
                )
            if len(found) == before:
                problems.append(
                    Diagnostic(root, 1, 1, "no runbook files (*.yaml, *.yml) here", "warning")
                )
        else:
            problems.append(
                Diagnostic(root, 1, 1, "no such file or folder; pass runbook files or folders")
            )
    return sorted(found), problems


def _overlaps(catalog: Catalog, loaded: list[_Loaded]) -> Iterator[Diagnostic]:
    """Warn when another runbook also matches an example alert meant for this one, and when
    a runbook cannot be indexed (so every alert is checked against it)."""
    unindexed = set(catalog.unindexed())
    for item in loaded:
        if item.runbook.id in unindexed:
            yield Diagnostic(
                item.path,
                *item.match,
                'match: no matcher here has a fixed set of values (like alertname="X" or '
                'service=~"a|b"), so every alert is checked against this runbook; add one',
                "warning",
            )
        runbook = item.runbook
        for i, case in enumerate(runbook.tests):
            if case.expect is not ExpectOutcome.MATCH:
                continue
            found = catalog.match(case.alert.labels)
            if len(found) < 2 or runbook.id not in {rb.id for rb in found}:
                continue
            winner = found[0]
            for other in found:
                if other.id == runbook.id:
                    continue
                loser = other if winner.id == runbook.id else runbook
                if winner.specificity > loser.specificity:
                    why = f"with {winner.specificity} matchers to {loser.specificity}"
                else:
                    why = f"on the lower id ({winner.specificity} matchers each)"
                yield Diagnostic(
                    item.path,
                    *item.examples[i],
                    f"tests[{i}].alert: this example alert also matches runbook {other.id!r} "
                    f"({catalog.path_of(other.id)}); {winner.id!r} wins {why}; make the "
                    "matchers more specific if the overlap is not intended",
                    "warning",
                )
