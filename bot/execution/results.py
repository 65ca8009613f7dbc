"""What a mitigation request led to: the execution states and the result callers get."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class ExecutionState(StrEnum):
    AWAITING_APPROVAL = "awaiting_approval"
    RUNNING = "running"
    APPLIED = "applied"
    UNDOING = "undoing"
    UNDONE = "undone"
    FAILED = "failed"
    DONE_MANUALLY = "done_manually"


@dataclass(slots=True)
class RunResult:
    """What a run or undo request led to, for the API, Slack and the CLI."""

    incident_id: int
    mitigation_id: str
    state: str
    message: str
    risk: str | None = None
    approvals: list[str] = field(default_factory=list)
    approvals_needed: int = 0
    outcome: dict[str, Any] | None = None
    attempts: int = 0
    changed: bool = True
