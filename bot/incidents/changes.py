"""What the engine tells the outside world (Slack, the console) after it commits.

Changes are coalesced per incident per batch: an alert storm produces one change per incident,
not one per alert.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from bot.intake.alert import AlertFacts

log = logging.getLogger(__name__)


class ChangeKind(StrEnum):
    OPENED = "opened"
    REOPENED = "reopened"
    UPDATED = "updated"
    STATUS = "status"
    RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class Note:
    """A line for the incident's thread.

    ``text`` is plain text and may carry alert label values, so every sink escapes it;
    ``actor`` is who did it (a Slack user id, an API actor, ``SYSTEM_ACTOR``), the only part
    Slack shows as a mention.
    """

    text: str
    actor: str | None = None


@dataclass(frozen=True, slots=True)
class AlertSnapshot:
    """An alert's facts as a commit left them (what runbook templates see)."""

    fingerprint: str
    status: str
    labels: Mapping[str, Any]
    annotations: Mapping[str, Any]
    starts_at: datetime
    ends_at: datetime | None
    generator_url: str | None

    @classmethod
    def of(cls, alert: AlertFacts) -> AlertSnapshot:
        return cls(
            alert.fingerprint,
            alert.status,
            dict(alert.labels),
            dict(alert.annotations),
            alert.starts_at,
            alert.ends_at,
            alert.generator_url,
        )


@dataclass(frozen=True, slots=True)
class Opened:
    """A new incident as the engine's commit left it: what the auto mitigator would otherwise
    read back at once (its status, its runbook, its first alert), one read fewer between the
    alert and the mitigation."""

    status: str
    runbook_id: str | None
    first_alert: AlertSnapshot


@dataclass(slots=True)
class IncidentChange:
    incident_id: int
    kinds: set[ChangeKind] = field(default_factory=set)
    notes: list[Note] = field(default_factory=list)
    # The incident's runbook (None: triage) on every change the engine makes, and only the
    # engine makes OPENED and REOPENED: listeners may skip those changes by runbook unread.
    runbook_id: str | None = None
    # The engine's span for this change (bot.telemetry), continued by the listeners' work:
    # auto mitigations and the Slack message. None while tracing is off.
    traceparent: str | None = None
    # Set by the batched engine on the change that opens a new incident (not a re-open).
    opened: Opened | None = None


class ChangeListener(Protocol):
    async def incidents_changed(self, changes: list[IncidentChange]) -> None: ...


class AfterCommit(Protocol):
    """Work an :class:`OpeningListener` did in the engine's transaction, told its fate."""

    def committed(self) -> None: ...

    def rolled_back(self) -> None: ...


class OpeningFailed(Exception):
    """An :class:`OpeningListener`'s work failed part way through, in the engine's
    transaction: the engine rolls that attempt back and redoes the batch without its opening
    listeners (what they would have done then runs after the commit, the usual way)."""


class OpeningListener(Protocol):
    """Hears the incidents a batch opens inside the engine's transaction, before its commit
    (the auto mitigator: the first mitigation claimed with the incident). It must not fail the
    batch for its own sake: when its work fails it raises :class:`OpeningFailed` (a
    transient database error as it is: the batch is then redone whole). No savepoint: its
    SAVEPOINT and RELEASE were two of the statements between a webhook and the value OFREP
    serves (issue 16), for a failure that is rare. The engine calls ``committed`` or
    ``rolled_back`` on what it returns, then publishes the changes as usual.
    """

    async def incidents_opening(
        self, session: AsyncSession, changes: Sequence[IncidentChange]
    ) -> AfterCommit | None: ...


class ChangeBus:
    """Fans changes out to every listener (auto mitigations, the console, Slack).

    The engine, the executor and the operations all publish here after they commit, so the
    Slack message follows every change, whoever made it. One failing listener never keeps the
    others from hearing about a change.
    """

    def __init__(self) -> None:
        self._listeners: list[ChangeListener] = []

    def subscribe(self, listener: ChangeListener) -> None:
        self._listeners.append(listener)

    async def incidents_changed(self, changes: list[IncidentChange]) -> None:
        for listener in self._listeners:
            try:
                await listener.incidents_changed(changes)
            except Exception:
                log.exception("listener %r failed on %d incident change(s)", listener, len(changes))

    async def changed(self, incident_id: int, kind: ChangeKind, note: Note | None = None) -> None:
        await self.incidents_changed([IncidentChange(incident_id, {kind}, [note] if note else [])])
