"""Routings remembered by the labels that decide them, for one runbook catalog.

Routing an alert (the matcher index, its regular expressions, the runbooks' precedence, the
group and its key) was a tenth of the incident engine's CPU in a storm (issue 16: py-spy,
2,000 alerts into 20 incidents on SQLite), where the alerts differ mostly in labels no runbook
looks at (``instance``, ``pod``). What decides an alert's :class:`Routing` is the value, or
absence, of the labels that some runbook's matchers name, that some runbook groups by, and
``alertname`` and :data:`TRIAGE_LABELS` (the triage group): the matcher index and every
matcher read only the labels they name, a runbook's group only its ``group_by``. Alerts equal
on those route the same, so their routing is worked out once.

Remembered only where that is exactly true and bounded: every deciding label absent or a
string (a non-string value never equals a string, so it never finds a remembered routing
either), their text at most :data:`MAX_REMEMBERED_CHARS` in all, at most
:data:`MEMO_SIZE` routings (then forgotten all at once: a storm refills them in a batch).
A memo belongs to one catalog snapshot; the engine makes a new one when the catalog changes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bot.incidents.routing_key import (
    TRIAGE_LABELS,
    Routing,
    runbook_key,
    triage_group,
    triage_key,
)
from bot.runbooks.snapshot import Catalog

MEMO_SIZE = 4096
MAX_REMEMBERED_CHARS = 1024
_ABSENT = object()


def route_in(catalog: Catalog, labels: dict[str, Any]) -> Routing:
    """Where an alert with ``labels`` belongs under ``catalog`` (worked out, not remembered)."""
    runbook = catalog.best(labels)
    if runbook is None:
        group = triage_group(labels)
        return Routing(triage_key(group), None, group)
    group = runbook.group_labels(labels)
    commit = catalog.revision.commit if catalog.revision is not None else None
    return Routing(runbook_key(runbook.id, group), runbook, group, commit)


class RouteMemo:
    """``route(labels)`` for one catalog, remembered by the deciding labels' values."""

    def __init__(self, catalog: Catalog, route: Callable[[dict[str, Any]], Routing]) -> None:
        self.catalog = catalog
        self._route = route
        names = {"alertname", *TRIAGE_LABELS}
        for runbook in catalog.runbooks.values():
            names.update(matcher.name for matcher in runbook.matchers)
            names.update(runbook.group_by)
        self.names = tuple(sorted(names))
        self._absent = (_ABSENT,) * len(self.names)
        self._known: dict[tuple[Any, ...], Routing] = {}

    def route(self, labels: dict[str, Any]) -> Routing:
        key = tuple(map(labels.get, self.names, self._absent))
        try:
            known = self._known.get(key)
        except TypeError:  # an unhashable value: worked out afresh, never remembered
            return self._route(labels)
        if known is not None:
            return known
        routing = self._route(labels)
        if _rememberable(key):
            if len(self._known) >= MEMO_SIZE:
                self._known.clear()
            self._known[key] = routing
        return routing


def _rememberable(key: tuple[Any, ...]) -> bool:
    chars = 0
    for value in key:
        if value is _ABSENT:
            continue
        if type(value) is not str:
            return False
        chars += len(value)
    return chars <= MAX_REMEMBERED_CHARS


__all__ = ["MAX_REMEMBERED_CHARS", "MEMO_SIZE", "RouteMemo", "route_in"]
