"""Which open incident an alert belongs to: the incident key, bounded to its column.

A runbook's incidents are keyed by the runbook and its ``group_by`` values. Alerts no runbook
matches are keyed by their alertname plus the labels Ballast routes by (:data:`TRIAGE_LABELS`),
so two services' alerts of the same name open two incidents, each attributed to its own
service, instead of one attributed to whichever arrived first.

Keys are label text, and labels are the sender's: a key longer than the column holds is
replaced by a digest of the same text, so it stays unique and stable without a database error.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.runbooks.schema import Runbook

TRIAGE_LABELS = ("service",)
"""Besides ``alertname``, the labels an untriaged alert is grouped by (as in Ballast's routing)."""

MAX_KEY_CHARS = 512
"""``incidents.key`` and ``incidents.open_key`` are VARCHAR(512)."""

NO_ALERTNAME = "(no alertname)"

KEY_CACHE_SIZE = 4096
"""Keys remembered by their group: a storm's alerts share a handful, and each key's JSON is
about 2 µs of the engine's CPU per alert (a fiftieth of a batched alert's). Only groups whose
text fits a key are remembered, so the cache holds at most about 2 MB of label text whatever
the senders' labels are (a value may be 16 KiB)."""


@dataclass(frozen=True, slots=True)
class Routing:
    """Where an alert belongs: the incident key and what a new incident looks like."""

    key: str
    runbook: Runbook | None
    group_labels: dict[str, str]
    revision: str | None = None  # the commit the runbook was matched under (runbooks.git)


def runbook_key(runbook_id: str, group: Mapping[str, str]) -> str:
    """``rb:<runbook>|<the group as JSON, keys sorted>``: the text stored keys were made with."""
    items = tuple(group.items())
    if _short(items):
        return _runbook_key(runbook_id, items)
    return _runbook_key.__wrapped__(runbook_id, items)


@functools.lru_cache(maxsize=KEY_CACHE_SIZE)
def _runbook_key(runbook_id: str, group: tuple[tuple[str, str], ...]) -> str:
    return bounded(f"rb:{runbook_id}|{json.dumps(dict(group), sort_keys=True)}")


def triage_group(labels: Mapping[str, Any]) -> dict[str, str]:
    """``alertname`` and each routing label the alert carries (absent ones are left out)."""
    group = {"alertname": str(labels.get("alertname") or NO_ALERTNAME)}
    for name in TRIAGE_LABELS:
        value = labels.get(name)
        if value:
            group[name] = str(value)
    return group


def triage_key(group: Mapping[str, str]) -> str:
    """``triage:<alertname>`` without routing labels (the key before they counted), else
    ``triage:<alertname>|{"service": ...}``."""
    items = tuple(group.items())
    return _triage_key(items) if _short(items) else _triage_key.__wrapped__(items)


@functools.lru_cache(maxsize=KEY_CACHE_SIZE)
def _triage_key(items: tuple[tuple[str, str], ...]) -> str:
    group = dict(items)
    rest = {name: value for name, value in group.items() if name != "alertname"}
    key = f"triage:{group['alertname']}"
    if rest:
        key += "|" + json.dumps(rest, sort_keys=True)
    return bounded(key)


def _short(items: tuple[tuple[str, str], ...]) -> bool:
    return sum(len(name) + len(value) for name, value in items) <= MAX_KEY_CHARS


def bounded(key: str) -> str:
    """The key itself if it fits its column, else its prefix and a SHA-256 of the whole."""
    if len(key) <= MAX_KEY_CHARS:
        return key
    prefix = key.split(":", 1)[0]
    return f"{prefix}:sha256:{hashlib.sha256(key.encode('utf-8', 'surrogatepass')).hexdigest()}"
