"""The kinds of timeline entry. The timeline is append-only; these names are stable."""

from __future__ import annotations

from enum import StrEnum


class TimelineKind(StrEnum):
    OPENED = "opened"
    REOPENED = "reopened"
    ALERT_FIRING = "alert_firing"
    ALERT_REFIRING = "alert_refiring"
    ALERT_RESOLVED = "alert_resolved"
    ALERTS_TRUNCATED = "alerts_truncated"
    ACKNOWLEDGED = "acknowledged"
    STATUS_CHANGED = "status_changed"
    RESOLVED = "resolved"
    TITLE_FALLBACK = "title_fallback"


SYSTEM_ACTOR = "ballast"
