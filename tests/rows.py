"""Rows the tests insert directly, with every column their table requires filled in."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.store.tables import Incident


def incident_row(key: str, at: datetime, **columns: Any) -> Incident:
    """An open incident of one firing alert, detected, opened and updated ``at``; ``columns``
    set or override any other column."""
    values: dict[str, Any] = {
        "key": key,
        "open_key": key,
        "status": "open",
        "title": key,
        "severity": "sev2",
        "group_labels": {},
        "alert_count": 1,
        "firing_count": 1,
        "detected_at": at,
        "opened_at": at,
        "updated_at": at,
        "reopen_count": 0,
    }
    return Incident(**(values | columns))
