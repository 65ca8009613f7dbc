"""Execution leases: one replica applies an execution; a dead one's work is taken over once.

When a claim moves an execution to ``running`` (or an undo to ``undoing``) the claiming
replica writes its lease into the row: its replica id, a heartbeat and an expiry one lease
length ahead (``execution.lease``, 30 s by default). While the action runs, a
:class:`LeaseKeeper` renews it every third of the length; no other replica touches the row
while it is live. The outcome is recorded only by the replica that still holds the lease.

When the holder dies its heartbeats stop; once the lease has expired, the next recovery pass
of any replica (at start and periodically, :meth:`MitigationExecutor.recover`) takes it with a
conditional UPDATE that exactly one replica wins, and applies the action again with the same
idempotency key (an ``Idempotency-Key`` header on ``http_request``, PagerDuty's ``dedup_key``;
control writes set a value), so the backend sees at most one re-send it can recognise.

Expiry is judged by each replica's clock: replicas must keep their clocks in step (NTP); a
skew well under the lease length does no harm.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import TracebackType

from bot.store import executions as store
from bot.store.database import Database

log = logging.getLogger(__name__)

DEFAULT_LEASE = timedelta(seconds=30)


def new_replica_id() -> str:
    """This process's name in leases: host, pid and a random tail (a restarted process on the
    same host is another replica; its earlier self's leases expire like any other's)."""
    return f"{socket.gethostname()[:100]}:{os.getpid()}:{secrets.token_hex(3)}"


@dataclass(frozen=True, slots=True)
class LeaseTerms:
    """Who holds leases taken by this process, and for how long each heartbeat extends one."""

    replica: str = field(default_factory=new_replica_id)
    length: timedelta = DEFAULT_LEASE

    def expiry(self, now: datetime) -> datetime:
        return now + self.length


class LeaseKeeper:
    """Renews the lease of one execution while its action runs (``async with``).

    A renewal that finds the lease gone (another replica took it over after a pause longer
    than the lease) sets :attr:`lost` and stops; the caller then records nothing. A database
    that is away for a beat is logged and tried again at the next one.
    """

    def __init__(
        self,
        db: Database,
        execution_id: int,
        terms: LeaseTerms,
        clock: Callable[[], datetime],
    ) -> None:
        self._db = db
        self._execution_id = execution_id
        self._terms = terms
        self._clock = clock
        self._task: asyncio.Task[None] | None = None
        self.lost = False

    async def __aenter__(self) -> LeaseKeeper:
        self._task = asyncio.create_task(self._beat(), name=f"lease-{self._execution_id}")
        return self

    async def __aexit__(
        self,
        _type: type[BaseException] | None,
        _error: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _beat(self) -> None:
        every = self._terms.length.total_seconds() / 3
        while True:
            await asyncio.sleep(every)
            now = self._clock()
            try:
                async with self._db.transaction() as session:
                    held = await store.renew_lease(
                        session,
                        self._execution_id,
                        self._terms.replica,
                        now,
                        self._terms.expiry(now),
                    )
            except Exception as err:
                log.warning(
                    "could not renew the lease of execution %d: %s", self._execution_id, err
                )
                continue
            if not held:
                self.lost = True
                log.warning(
                    "lost the lease of execution %d: another replica took it over",
                    self._execution_id,
                )
                return
