"""A statement that rides on the next write of its transaction (PostgreSQL): one round trip
for two.

Why: on the path from an alert to its first mitigation the engine's transaction inserts the
execution (with its "approved" timeline entry) and, a moment later, writes the control value.
Neither reads what the other writes, yet each was a round trip of its own, and the event loop
had nothing to do for the alert during either (issue 16). The executor now hands its INSERT
to the control write as a :class:`Rider`; the write sends it as data-modifying ``WITH``
clauses of its own statement (:meth:`RiderShape.carried_by`), and the rider's value (the
execution's id) comes back as a column of that statement's row (:meth:`Rider.took`). A rider
no statement took is sent on its own by :meth:`Rider.settle`, which the holder calls before
anything needs its value: a rider changes when its rows are written, never whether.

Only for statements that neither read what the other writes nor change the same rows: both
run against one snapshot, all or none (the rule of
:func:`bot.store.driver_sql.execute_together`). A row's foreign key to a row written earlier
in the transaction is fine. SQLite has no data-modifying ``WITH``: nothing rides there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import CTE, Row, Select, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import UpdateBase

# The column of the carrying statement's row that holds the rider's value.
RIDER_VALUE = "rider_value"


@dataclass(frozen=True, eq=False)
class RiderShape:
    """A kind of rider, built once: ``statement``, run alone, returns the rider's one value;
    ``parts``, the same writes as data-modifying CTEs, of which ``returning`` (a CTE among
    them whose first column is that value) gives it to a statement that carries them. Both
    take the same parameters."""

    statement: UpdateBase
    parts: tuple[CTE, ...]
    returning: CTE
    _carried: dict[int, tuple[Select[Any], Select[Any]]] = field(default_factory=dict, repr=False)

    def carried_by(self, statement: Select[Any]) -> Select[Any]:
        """``statement`` with this shape's writes as CTEs of it and their value as its
        :data:`RIDER_VALUE` column. Built once per statement (SQLAlchemy then compiles it
        once): a statement built anew per call cost more than the round trip it saves."""
        known = self._carried.get(id(statement))
        if known is None or known[0] is not statement:
            value = select(self.returning.c[0]).scalar_subquery().label(RIDER_VALUE)
            known = (statement, statement.add_cte(*self.parts).add_columns(value))
            self._carried[id(statement)] = known
        return known[1]


@dataclass(eq=False)
class Rider:
    """One deferred write of ``shape`` with ``params``; ``written`` hears its value once
    its rows are in the transaction (from the carrying statement or its own)."""

    shape: RiderShape
    params: dict[str, Any]
    written: Callable[[Any], None]
    settled: bool = False
    value: Any = None

    def took(self, row: Row[Any]) -> None:
        """The carrying statement ran: its row holds the value."""
        self._settle(row._mapping[RIDER_VALUE])

    async def settle(self, session: AsyncSession) -> Any:
        """The rider's value; its statement is sent now unless a write carried it."""
        if not self.settled:
            self._settle((await session.execute(self.shape.statement, self.params)).scalar_one())
        return self.value

    def _settle(self, value: Any) -> None:
        self.settled = True
        self.value = value
        self.written(value)


__all__ = ["RIDER_VALUE", "Rider", "RiderShape"]
