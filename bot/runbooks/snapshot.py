"""One loaded set of runbooks: never changes once built, matched through an index.

The loader builds these; :class:`bot.runbooks.catalog.LiveCatalog` holds the one that is live
and swaps it atomically on reload.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from urllib.parse import quote

from bot.matching.index import MatcherIndex
from bot.runbooks.schema import Runbook


def precedence(runbook: Runbook) -> tuple[int, str]:
    """Sort key among runbooks that match one alert: most matchers first, then lowest id."""
    return (-runbook.specificity, runbook.id)


@dataclass(frozen=True, slots=True)
class Revision:
    """The git commit a catalog was read from, and the checkout it was read in.

    Paths of runbook files relative to ``root`` are their paths in the repository.
    """

    commit: str
    root: Path
    web_url: str | None = None  # runbooks.web_url: {commit}, {path}, {id}


class Catalog:
    """Runbooks by id, matched through an index rather than a scan of every runbook."""

    __slots__ = ("_index", "_paths", "_revision", "_runbooks")

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
        self._revision: Revision | None = None

    @property
    def revision(self) -> Revision | None:
        """The commit these runbooks were read at; None when read from a plain folder."""
        return self._revision

    def at_revision(self, revision: Revision) -> Catalog:
        """The same runbooks and index, labelled with the commit they were read at."""
        stamped = object.__new__(Catalog)
        stamped._runbooks = self._runbooks
        stamped._paths = self._paths
        stamped._index = self._index
        stamped._revision = revision
        return stamped

    def repository_path(self, runbook_id: str) -> str | None:
        """A runbook's file as a path inside the git repository (``runbooks/x.yaml``); None
        when the catalog was not read from git or the runbook has no file."""
        path = self._paths.get(runbook_id)
        if self._revision is None or path is None:
            return None
        try:
            return path.relative_to(self._revision.root).as_posix()
        except ValueError:
            return None

    @property
    def runbooks(self) -> Mapping[str, Runbook]:
        return self._runbooks

    def __len__(self) -> int:
        return len(self._runbooks)

    def path_of(self, runbook_id: str) -> Path:
        """The file a runbook came from; ``KeyError`` for unknown ids or in-memory runbooks."""
        return self._paths[runbook_id]

    def web_url(self, runbook_id: str, commit: str | None = None) -> str | None:
        """A link to the runbook's file at ``commit`` (default: this catalog's) through
        ``runbooks.web_url``, each value percent-encoded; None when there is no template, the
        catalog is not from git, or the runbook has no file."""
        revision = self._revision
        path = self.repository_path(runbook_id)
        if revision is None or revision.web_url is None or path is None:
            return None
        return revision.web_url.format(
            commit=quote(commit or revision.commit, safe=""),
            path=quote(path, safe="/"),
            id=quote(runbook_id, safe=""),
        )

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
