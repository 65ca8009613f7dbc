"""One loaded set of runbooks: never changes once built, matched through an index.

The loader builds these; :class:`bot.runbooks.catalog.LiveCatalog` holds the one that is live
and swaps it atomically on reload.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from types import MappingProxyType

from bot.matching.index import MatcherIndex
from bot.runbooks.schema import Runbook


def precedence(runbook: Runbook) -> tuple[int, str]:
    """Sort key among runbooks that match one alert: most matchers first, then lowest id."""
    return (-runbook.specificity, runbook.id)


class Catalog:
    """Runbooks by id, matched through an index rather than a scan of every runbook."""

    __slots__ = ("_index", "_paths", "_runbooks")

    def __init__(
        self, runbooks: Iterable[Runbook], paths: Mapping[str, Path] | None = None
    ) -> None:
        by_id: dict[str, Runbook] = {}
        for runbook in runbooks:
            if runbook.id in by_id:
                raise ValueError(f"runbook id {runbook.id!r} appears twice; ids must be unique")
            by_id[runbook.id] = runbook
        self._runbooks = MappingProxyType(dict(sorted(by_id.items())))
        self._paths = MappingProxyType(dict(paths or {}))
        self._index: MatcherIndex[str] = MatcherIndex(
            (runbook.id, runbook.matchers) for runbook in by_id.values()
        )

    @property
    def runbooks(self) -> Mapping[str, Runbook]:
        return self._runbooks

    def __len__(self) -> int:
        return len(self._runbooks)

    def path_of(self, runbook_id: str) -> Path:
        """The file a runbook came from; ``KeyError`` for unknown ids or in-memory runbooks."""
        return self._paths[runbook_id]

    def match(self, labels: Mapping[str, str]) -> list[Runbook]:
        """Every runbook whose matchers all match, the one that handles the alert first."""
        return sorted((self._runbooks[key] for key in self._index.match(labels)), key=precedence)

    def unindexed(self) -> list[str]:
        """Ids of runbooks no matcher can file in the index: each is checked on every alert."""
        return sorted(self._index.unindexed_keys())

    def best(self, labels: Mapping[str, str]) -> Runbook | None:
        """The runbook that handles an alert with these labels, if any."""
        found = [self._runbooks[key] for key in self._index.match(labels)]
        return min(found, key=precedence) if found else None
