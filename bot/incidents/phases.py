"""How long each phase of an incident took, from its recorded timestamps.

detect: from the signal starting (earliest alert startsAt) to Ballast opening the incident;
acknowledge / mitigate / resolve: from the incident opening to that moment. A phase that never
happened (never acknowledged) is absent rather than zero.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol


class HasPhaseTimes(Protocol):
    detected_at: datetime
    opened_at: datetime
    acknowledged_at: datetime | None
    mitigated_at: datetime | None
    resolved_at: datetime | None


def phase_durations(incident: HasPhaseTimes) -> dict[str, timedelta]:
    phases = {"detect": incident.opened_at - incident.detected_at}
    if incident.acknowledged_at is not None:
        phases["acknowledge"] = incident.acknowledged_at - incident.opened_at
    if incident.mitigated_at is not None:
        phases["mitigate"] = incident.mitigated_at - incident.opened_at
    if incident.resolved_at is not None:
        phases["resolve"] = incident.resolved_at - incident.opened_at
    return phases
