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


class Preview(StrEnum):
    """A dry run's result: not a state of the execution, which a dry run neither creates nor
    changes (its journal entry is all it leaves)."""

    DRY_RUN = "dry_run"


@dataclass(slots=True)
class RunResult:
    """What a run or undo request led to, for the API, Slack and the CLI.

    ``state`` is the execution's state after the request, or ``Preview.DRY_RUN`` when nothing
    was run (both are string enums, so the API and messages show their values).
    """

    incident_id: int
    mitigation_id: str
    state: ExecutionState | Preview
    message: str
    risk: str | None = None
    approvals: list[str] = field(default_factory=list)
    approvals_needed: int = 0
    outcome: dict[str, Any] | None = None
    attempts: int = 0
    changed: bool = True
    # The exact control change requested (``ControlPlan.as_dict``): shown before approval.
    plan: dict[str, Any] | None = None

    @property
    def dry_run(self) -> bool:
        return self.state is Preview.DRY_RUN
