"""Incident states and the transitions between them.

``triggered → acknowledged → mitigating → monitoring → resolved``; a state may be skipped
(an auto mitigation moves ``triggered`` straight to ``mitigating``), and a resolved incident
may be re-opened when its alert fires again shortly after.
"""

from __future__ import annotations

from enum import StrEnum

from bot.errors import ConflictError


class IncidentStatus(StrEnum):
    TRIGGERED = "triggered"
    ACKNOWLEDGED = "acknowledged"
    MITIGATING = "mitigating"
    MONITORING = "monitoring"
    RESOLVED = "resolved"

    @property
    def is_open(self) -> bool:
        return self is not IncidentStatus.RESOLVED


_ALLOWED: dict[IncidentStatus, frozenset[IncidentStatus]] = {
    IncidentStatus.TRIGGERED: frozenset(
        {
            IncidentStatus.ACKNOWLEDGED,
            IncidentStatus.MITIGATING,
            IncidentStatus.MONITORING,
            IncidentStatus.RESOLVED,
        }
    ),
    IncidentStatus.ACKNOWLEDGED: frozenset(
        {IncidentStatus.MITIGATING, IncidentStatus.MONITORING, IncidentStatus.RESOLVED}
    ),
    IncidentStatus.MITIGATING: frozenset({IncidentStatus.MONITORING, IncidentStatus.RESOLVED}),
    IncidentStatus.MONITORING: frozenset({IncidentStatus.MITIGATING, IncidentStatus.RESOLVED}),
    IncidentStatus.RESOLVED: frozenset({IncidentStatus.TRIGGERED}),
}


def can_transition(current: IncidentStatus, target: IncidentStatus) -> bool:
    return target in _ALLOWED[current]


def check_transition(current: IncidentStatus, target: IncidentStatus) -> None:
    if not can_transition(current, target):
        allowed = ", ".join(sorted(s.value for s in _ALLOWED[current])) or "none"
        raise ConflictError(
            f"incident is {current.value}; it cannot move to {target.value} "
            f"(from {current.value} it can move to: {allowed})"
        )
