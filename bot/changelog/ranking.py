"""Which changes an incident shows first: kinds its runbook names as likely causes, then the
ones closest in time to the first alert (a change 12 minutes before beats one 20 hours before;
one shipped while the incident is open comes after every earlier one of its rank)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.changelog.kinds import ChangeKind
from bot.changelog.log import Change

DEFAULT_WINDOW = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class RankedChange:
    change: Change
    likely_cause: bool  # its kind is named in the runbook's likely causes
    before_incident: timedelta  # first alert minus when it went live (negative: during)


def rank(
    changes: Iterable[Change], *, first_alert: datetime, likely: set[ChangeKind]
) -> list[RankedChange]:
    ranked = [
        RankedChange(c, c.kind in {k.value for k in likely}, first_alert - c.at) for c in changes
    ]
    ranked.sort(
        key=lambda r: (
            not r.likely_cause,
            r.before_incident <= timedelta(0),  # since the first alert: after the earlier ones
            abs(r.before_incident),
            -r.change.id,
        )
    )
    return ranked


def relevant(changes: Sequence[Change], *, until: datetime | None) -> list[Change]:
    """Leave out what went live after the incident was resolved."""
    return [c for c in changes if until is None or c.at <= until]
