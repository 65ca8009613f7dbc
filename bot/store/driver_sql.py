"""A batch's executemany statements as the driver's own SQL, with SQLAlchemy's conversions.

Why: executing a Core statement with a list of parameter sets, SQLAlchemy builds a dictionary
per row (``construct_params``) and calls each value's bind processor through its type's
wrappers; for the incident engine's batches that was 17-21% of the server's samples on both
databases, more than the rows' own writing (issue 16, docs/benchmarks.md). A
:class:`DriverStatement` does the same conversions without the dictionaries: the statement is
compiled once per dialect by SQLAlchemy (the SQL text the ORM path sends, casts included, as
for ``executemany``), each parameter is converted by its bound type's own bind processor for
that dialect (for times on SQLite, ``UtcDateTime``'s own fast one), and the rows go to
``exec_driver_sql`` as tuples in the driver's parameter order.

The same approach as the inbox writer's INSERT (:mod:`bot.store.inbox_sql`), there with a
statement text of its own (a multi-row VALUES). Nothing from a request is ever part of the SQL
text: it is the compiled statement; values go as parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.dml import UpdateBase

Processor = Callable[[Any], Any]


class DriverStatement:
    """An INSERT or UPDATE executed for many rows as driver SQL.

    ``names``: the statement's bind parameter names, in the order the caller gives each row's
    values (every parameter of the statement must be among them). Compiled lazily, per
    dialect, and kept.
    """

    def __init__(self, statement: UpdateBase, names: Sequence[str]) -> None:
        self._statement = statement
        self.names = tuple(names)
        self._plans: dict[str, _Plan] = {}

    def plan(self, dialect: Dialect) -> _Plan:
        plan = self._plans.get(dialect.name)
        if plan is None:
            plan = self._plans[dialect.name] = _Plan(self._statement, self.names, dialect)
        return plan

    async def execute_many(
        self, connection: AsyncConnection, rows: Iterable[Sequence[Any]]
    ) -> None:
        """Execute for every row of ``rows`` (values in ``names`` order), as one executemany."""
        plan = self.plan(connection.dialect)
        converted = [plan.convert(row) for row in rows]
        if converted:
            await connection.exec_driver_sql(plan.sql, converted)


class _Plan:
    """The statement compiled for one dialect: its SQL text and, per driver parameter, where
    its value is in a caller's row and how it is converted."""

    def __init__(self, statement: UpdateBase, names: tuple[str, ...], dialect: Dialect) -> None:
        # As SQLAlchemy compiles it for executemany: no RETURNING of the new row's key.
        compiled = statement.compile(dialect=dialect, for_executemany=True)
        order = compiled.positiontup
        if order is None:
            raise ValueError(f"{dialect.name}'s paramstyle is not positional")
        missing = [name for name in order if name not in names]
        if missing:
            raise ValueError(f"no value given for the statement's parameters {missing}")
        self.sql = compiled.string
        self.steps: list[tuple[int, Processor | None]] = [
            (
                names.index(name),
                compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect),
            )
            for name in order
        ]
        self.sequence: Callable[[Iterable[Any]], Sequence[Any]] = dialect.execute_sequence_format

    def convert(self, row: Sequence[Any]) -> Sequence[Any]:
        return self.sequence(
            [row[i] if process is None else process(row[i]) for i, process in self.steps]
        )


__all__ = ["DriverStatement"]
