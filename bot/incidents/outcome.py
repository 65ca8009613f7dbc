"""What the incident engine did with one stored alert.

Stored in ``inbox.outcome`` and counted in the ``alerts_processed`` metric by this label, so
the values are stable names.
"""

from __future__ import annotations

from enum import StrEnum


class AlertOutcome(StrEnum):
    NEW_ALERT = "new_alert"  # an alert the incident did not have yet
    NEW_OCCURRENCE = "new_occurrence"  # a resolved alert firing again (a newer startsAt)
    RESOLVED = "resolved"  # a firing alert of the incident resolved
    UNCHANGED = "unchanged"  # a resend of what the incident already knows
    STALE = "stale"  # a firing alert whose resolve was already stored (arrived late)
    RESOLVED_WITHOUT_INCIDENT = "resolved_without_incident"  # nothing open to resolve
    ERROR = "error"  # could not be processed; logged, and the rows behind it go on
