"""The live set of runbooks: the holder that swaps it atomically on reload.

A :class:`~bot.runbooks.snapshot.Catalog` never changes once built: a reader takes
``live.current`` once and works with that snapshot, however many reloads happen meanwhile.
:class:`LiveCatalog` replaces its catalog only when a reload has no errors, so a bad push to
the runbooks repo never takes the last good catalog away from a running bot.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from actions import ActionRegistry
from bot.runbooks.loader import CatalogLoad, load_catalog
from bot.runbooks.snapshot import Catalog, Revision


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

    def __init__(
        self, catalog: Catalog | None = None, panels: Mapping[str, Sequence[str]] | None = None
    ) -> None:
        self._panels = panels  # each service's scorecard panel names, checked on every reload
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

    def reload(
        self,
        paths: Sequence[Path],
        registry: ActionRegistry | None = None,
        revision: Revision | None = None,
    ) -> CatalogLoad:
        """Load ``paths`` and go live with the result only when it has no errors.

        ``revision`` labels the catalog with the git commit its files were read at. Blocks
        while the files are parsed, and while another reload runs: on the event loop, call
        :meth:`areload` instead.
        """
        with self._reloading:
            result = load_catalog(paths, registry, self._panels, panel_severity="warning")
            if result.catalog is not None and revision is not None:
                result = replace(result, catalog=result.catalog.at_revision(revision))
            state = self._state
            if result.catalog is None:
                self._state = replace(state, last_load=result)
            else:
                self._state = _Snapshot(
                    result.catalog, state.version + 1, datetime.now(UTC), result
                )
        return result

    async def areload(
        self,
        paths: Sequence[Path],
        registry: ActionRegistry | None = None,
        revision: Revision | None = None,
    ) -> CatalogLoad:
        """:meth:`reload` in a worker thread, so the event loop is never blocked."""
        async with self._waiting:
            return await asyncio.to_thread(self.reload, paths, registry, revision)
