"""An incident's "more alerts" announcements, at most one per window.

During a storm the engine changes each of its incidents in every batch, and most of those
changes say only that the counts moved. Both announcers (the Slack message, the console's line)
render the incident as it is when they render, so such a change held back for a few seconds and
shown later loses nothing: the later render carries the counts as they are then. Rendering each
one as it came was a render per incident per engine batch, awaited by the engine: with Slack
configured, a storm into 20 incidents fell minutes behind the intake (issue 16).

A change of state (opened, re-opened, status, resolved) or one with something to say (notes)
goes out at once, and shows the counts too, so it replaces what is held for its incident.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from bot.incidents.changes import ChangeKind, IncidentChange

log = logging.getLogger(__name__)

UPDATE_EVERY_SECONDS = 5.0
_COUNTS_ONLY = frozenset({ChangeKind.UPDATED})

Announce = Callable[[list[IncidentChange]], Awaitable[None]]


def counts_only(change: IncidentChange) -> bool:
    """Whether the change says no more than "the incident's alerts changed" (what may wait)."""
    return not change.notes and change.kinds <= _COUNTS_ONLY


class UpdateWindow:
    """Passes changes on to ``announce``, holding an incident's counts-only changes until
    ``every`` seconds after its last announcement; the latest held change goes out then.

    An incident not announced within the window is announced at once, so a quiet incident's
    update is never late; only a busy one's are spaced out. ``every`` 0 holds nothing.
    """

    def __init__(
        self,
        announce: Announce,
        *,
        every: float,
        name: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._announce = announce
        self._clock = clock
        self._every = every
        self._name = name
        # Incident id -> when it was last announced (``clock``), oldest first: an id is
        # moved to the end when announced, and dropped once its window is over.
        self._announced: dict[int, float] = {}
        # Incident id -> its latest counts-only change held back.
        self._held: dict[int, IncidentChange] = {}
        self._flusher: asyncio.Task[None] | None = None
        self._drained = False  # shutting down: nothing is held any more

    @property
    def held(self) -> int:
        """How many incidents have an update held back."""
        return len(self._held)

    async def incidents_changed(self, changes: list[IncidentChange]) -> None:
        self._forget_before(self._clock() - self._every)
        at_once: list[IncidentChange] = []
        for change in changes:
            incident_id = change.incident_id
            if (
                counts_only(change)
                and incident_id in self._announced
                and not self._drained
                and self._every > 0
            ):
                self._held[incident_id] = change
            else:
                self._held.pop(incident_id, None)  # this announcement shows the counts too
                at_once.append(change)
        await self._pass_on(at_once)
        if self._held and (self._flusher is None or self._flusher.done()):
            self._flusher = asyncio.create_task(self._announce_held(), name=self._name)

    async def flush(self) -> None:
        """Announce what is held back now, without waiting for its window."""
        held, self._held = list(self._held.values()), {}
        await self._pass_on(held)

    async def drain(self) -> None:
        """At shutdown, before the database closes: announce what is held back now, and every
        change after this at once (no task is left waiting for a window)."""
        self._drained = True
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
            self._flusher = None
        await self.flush()

    async def _pass_on(self, changes: list[IncidentChange]) -> None:
        if not changes:
            return
        now = self._clock()
        for change in changes:
            self._announced.pop(change.incident_id, None)
            self._announced[change.incident_id] = now
        await self._announce(changes)

    def _forget_before(self, cutoff: float) -> None:
        stale: list[int] = []
        for incident_id, at in self._announced.items():
            if at >= cutoff:
                break
            stale.append(incident_id)
        for incident_id in stale:
            del self._announced[incident_id]

    async def _announce_held(self) -> None:
        """Each held change once its incident's window is over; until none is held."""
        while self._held:
            first = min(self._announced.get(i, 0.0) for i in self._held) + self._every
            await asyncio.sleep(max(0.0, first - self._clock()))
            self._forget_before(self._clock() - self._every)
            due = [change for i, change in self._held.items() if i not in self._announced]
            for change in due:
                del self._held[change.incident_id]
            try:
                await self._pass_on(due)
            except Exception:
                log.exception("could not announce %d held incident update(s)", len(due))
