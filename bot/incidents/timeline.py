"""Every kind of timeline entry: the values of the ``timeline.kind`` column.

One enum for the whole column, whoever writes the entry (the engine, the lifecycle operations,
escalation, reminders, the mitigation journal, the Slack skip button). The timeline is
append-only; these names are stable (they are the API's ``kind`` and the postmortem reads them).
"""

from __future__ import annotations

from enum import StrEnum


class TimelineKind(StrEnum):
    # The incident and its alerts.
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
    ESCALATED = "escalated"
    REMINDER = "reminder"
    COMMENT = "comment"  # a person's note in the record (API, CLI, console)
    REFUSED = "refused"  # someone not allowed to ack, resolve, escalate or skip (Slack)
    # Its mitigations (bot.execution.journal; skipped: a Slack button).
    MITIGATION_DRY_RUN = "mitigation_dry_run"
    MITIGATION_REQUESTED = "mitigation_requested"
    MITIGATION_APPROVED = "mitigation_approved"
    MITIGATION_REFUSED = "mitigation_refused"
    MITIGATION_APPLIED = "mitigation_applied"
    MITIGATION_FAILED = "mitigation_failed"
    MITIGATION_UNDONE = "mitigation_undone"
    MITIGATION_UNDO_FAILED = "mitigation_undo_failed"
    MITIGATION_DONE_MANUALLY = "mitigation_done_manually"
    MITIGATION_SKIPPED = "mitigation_skipped"
    # Did it work? (bot.verification: the verdict with the values before and after, and the
    # ladder step it led to.)
    MITIGATION_VERIFIED = "mitigation_verified"
    MITIGATION_LADDER = "mitigation_ladder"
    SCORECARD = "scorecard"  # a snapshot of the service's scorecard panels
    EXEMPLARS = (
        "exemplars"  # trace ids of exemplars of the alert's PromQL (traces: in ballast.yaml)
    )


# The entries each alert leaves (a storm incident has tens of thousands): pages that show a
# storm incident show the newest of these and every entry of the other kinds.
PER_ALERT_KINDS = frozenset(
    {TimelineKind.ALERT_FIRING, TimelineKind.ALERT_REFIRING, TimelineKind.ALERT_RESOLVED}
)
OTHER_KINDS = frozenset(TimelineKind) - PER_ALERT_KINDS

SYSTEM_ACTOR = "ballast"
"""The actor of what Ballast does by itself: its timeline entries, automatic runs and undos
(execution policy lets it run only what needs no approval)."""
