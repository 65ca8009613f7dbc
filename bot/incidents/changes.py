"""What the engine tells the outside world (Slack, the console) after it commits.

Changes are coalesced per incident per batch: an alert storm produces one change per incident,
not one per alert.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol


class ChangeKind(StrEnum):
    OPENED = "opened"
    REOPENED = "reopened"
    UPDATED = "updated"
    STATUS = "status"
    RESOLVED = "resolved"


@dataclass(slots=True)
class IncidentChange:
    incident_id: int
    kinds: set[ChangeKind] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)


class ChangeListener(Protocol):
    async def incidents_changed(self, changes: list[IncidentChange]) -> None: ...
