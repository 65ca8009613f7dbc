"""The set of loaded runbooks, and the holder that swaps it atomically on reload.

A :class:`Catalog` never changes once built: a reader takes ``live.current`` once and works
with that snapshot, however many reloads happen meanwhile. :class:`LiveCatalog` replaces its
catalog only when a reload has no errors, so a bad push to the runbooks repo never takes the
last good catalog away from a running bot.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

from bot.matching.index import MatcherIndex
from bot.matching.runbook import Runbook

if TYPE_CHECKING:
    from actions import ActionRegistry
    from bot.matching.loader import CatalogLoad


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


@dataclass(frozen=True, slots=True)
class _Snapshot:
    catalog: Catalog
    version: int
    loaded_at: datetime
    last_load: CatalogLoad | None


class LiveCatalog:
    """The catalog a running bot matches against; reloads keep the last good one on errors.

    Everything a reader sees (catalog, version, load time, last load) changes in one attribute
    assignment, so no reader ever sees a new catalog with an old version. Reloads run one at a
    time, whichever thread or coroutine starts them, each reading the files once it has its
    turn, so the catalog published last always comes from the files read last.

    From the event loop use :meth:`areload`: files are parsed in a worker thread while the
    loop goes on, and callers waiting for their turn wait on the loop, not in threads. An
    ``areload`` that is cancelled still finishes its load in the background and publishes it.
    """

    def __init__(self, catalog: Catalog | None = None) -> None:
        initial = catalog if catalog is not None else Catalog(())
        self._state = _Snapshot(initial, 1 if catalog is not None else 0, datetime.now(UTC), None)
        self._reloading = threading.Lock()  # one load-and-publish at a time, from any thread
        self._waiting = asyncio.Lock()  # areload callers queue on the loop, not in threads

    @property
    def current(self) -> Catalog:
        return self._state.catalog

    @property
    def version(self) -> int:
        """How many catalogs have gone live; 0 until the first successful load."""
        return self._state.version

    @property
    def loaded_at(self) -> datetime:
        return self._state.loaded_at

    @property
    def last_load(self) -> CatalogLoad | None:
        """The most recent load, including one refused for errors; None before the first."""
        return self._state.last_load

    def reload(self, paths: Sequence[Path], registry: ActionRegistry | None = None) -> CatalogLoad:
        """Load ``paths`` and go live with the result only when it has no errors.

        Blocks while the files are parsed, and while another reload runs: on the event loop,
        call :meth:`areload` instead.
        """
        # Imported here because the loader builds Catalogs: a top-level import would be a cycle.
        from bot.matching.loader import load_catalog

        with self._reloading:
            result = load_catalog(paths, registry)
            state = self._state
            if result.catalog is None:
                self._state = replace(state, last_load=result)
            else:
                self._state = _Snapshot(
                    result.catalog, state.version + 1, datetime.now(UTC), result
                )
        return result

    async def areload(
        self, paths: Sequence[Path], registry: ActionRegistry | None = None
    ) -> CatalogLoad:
        """:meth:`reload` in a worker thread, so the event loop is never blocked."""
        async with self._waiting:
            return await asyncio.to_thread(self.reload, paths, registry)
