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
text: it is the compiled statement (or, below, one built from the table's own names and
types); values go as parameters.

**On PostgreSQL, many rows as one statement.** A statement made by :func:`insert_rows` or
:func:`update_rows` writes several rows in one execution: each column's values go as one array
parameter, ``unnest`` turns them back into rows (``INSERT ... SELECT ... FROM unnest(...) WITH
ORDINALITY ... ORDER BY`` the ordinality, so rows are inserted, and numbered, in the caller's
order; ``UPDATE ... FROM unnest(...) WHERE`` the key). asyncpg's executemany runs the prepared
statement once per row, and PostgreSQL starts its executor for each: ``bench/pg_rows.py``
(200-row batches of the engine's own statements) measured PostgreSQL's CPU per row 23.0 -> 17.5
µs for the timeline's INSERT, 25.0 -> 21.5 for the incident alerts' and 29.0 -> 22.5 for the
inbox's claim and processed mark (docs/benchmarks.md). One UPDATE of many rows applies them
in the plan's order, not the caller's: only for rows whose order cannot matter (no unique
column changed, rows locked before). A single row, and SQLite (in-process, no executor
start-up to save), take the statement as compiled.

**On PostgreSQL, several statements as one.** :func:`execute_together` sends the rows of
several such statements in one round trip: each but the last becomes a data-modifying ``WITH``
of the last, so PostgreSQL runs them in one statement, all against the same snapshot (none sees
another's rows) and all or none. Only for statements that neither read what another writes nor
change the same rows; a row's foreign key to a row written earlier in the transaction is
fine. A statement the engine's transaction sent once per write was a round trip each, during
which the event loop had nothing to do for this transaction (issue 16: the incident's alert,
timeline entry, timer and inbox outcome were four). On SQLite each is executed in turn, as
:meth:`DriverStatement.execute_many`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import BindParameter, Table, bindparam, insert, update
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.types import TypeEngine

from bot.store.upsert import upsert

Processor = Callable[[Any], Any]


class DriverStatement:
    """An INSERT or UPDATE executed for many rows as driver SQL.

    ``names``: the statement's bind parameter names, in the order the caller gives each row's
    values (every parameter of the statement must be among them). Compiled lazily, per
    dialect, and kept.
    """

    def __init__(
        self,
        statement: UpdateBase | Callable[[str], UpdateBase],
        names: Sequence[str],
        *,
        rows: _RowsForm | None = None,
    ) -> None:
        # A statement, or one built for a dialect's name (an ON CONFLICT clause is each
        # dialect's own construct).
        self._statement = statement
        self.names = tuple(names)
        self._rows = rows
        self._plans: dict[str, _Plan] = {}

    def plan(self, dialect: Dialect) -> _Plan:
        plan = self._plans.get(dialect.name)
        if plan is None:
            statement = self._statement
            if not isinstance(statement, UpdateBase):
                statement = statement(dialect.name)
            plan = self._plans[dialect.name] = _Plan(statement, self.names, dialect, self._rows)
        return plan

    async def execute_many(
        self, connection: AsyncConnection, rows: Iterable[Sequence[Any]]
    ) -> None:
        """Execute for every row of ``rows`` (values in ``names`` order): on PostgreSQL as one
        statement where this was made for it, else as one executemany."""
        plan = self.plan(connection.dialect)
        listed = rows if isinstance(rows, Sequence) else list(rows)
        if not listed:
            return
        if plan.arrays_sql is not None and len(listed) > 1:
            await connection.exec_driver_sql(plan.arrays_sql, plan.arrays(listed))
        else:
            await connection.exec_driver_sql(plan.sql, [plan.convert(row) for row in listed])


@dataclass(frozen=True, slots=True)
class _RowsForm:
    """What a many-rows statement writes: ``table``'s ``columns`` (and for an UPDATE, the
    ``key`` column its rows are found by, first in each row); for an INSERT, ``conflict``: the
    unique columns on whose conflict a row is skipped (``ON CONFLICT ... DO NOTHING``)."""

    table: Table
    columns: tuple[str, ...]
    key: str | None = None
    conflict: tuple[str, ...] = ()

    def arrays_sql(self, dialect: Dialect, first: int = 1) -> str:
        """The statement with one array parameter per column (in the rows' order), numbered
        from ``first``. Its text is made of the table's own (quoted) names and types only:
        never anything of a row's."""
        quote = dialect.identifier_preparer.quote
        table = dialect.identifier_preparer.format_table(self.table)
        names = ([self.key] if self.key is not None else []) + list(self.columns)
        arrays = ", ".join(
            f"${number}::{self.table.c[name].type.compile(dialect=dialect)}[]"
            for number, name in enumerate(names, start=first)
        )
        aliases = ", ".join(quote(name) for name in names)
        if self.key is None:
            columns = ", ".join(quote(name) for name in self.columns)
            skip = ""
            if self.conflict:
                skip = f" ON CONFLICT ({', '.join(map(quote, self.conflict))}) DO NOTHING"
            return (
                f"INSERT INTO {table} ({columns}) SELECT {columns} FROM unnest({arrays}) "  # noqa: S608
                f"WITH ORDINALITY AS v({aliases}, n__) ORDER BY n__{skip}"
            )
        key = quote(self.key)
        sets = ", ".join(f"{quote(name)} = v.{quote(name)}" for name in self.columns)
        return (
            f"UPDATE {table} SET {sets} FROM unnest({arrays}) AS v({aliases}) "  # noqa: S608
            f"WHERE {table}.{key} = v.{key}"
        )


def insert_rows(
    table: Table,
    columns: Sequence[str],
    types: Mapping[str, TypeEngine[Any]] | None = None,
    *,
    skip_conflicts_on: Sequence[str] = (),
) -> DriverStatement:
    """An INSERT of ``columns`` (each row's values in that order), as one statement on
    PostgreSQL. ``types``: a column's values bound through another type than the column's
    (its bind processor), as a ``bindparam(type_=...)`` would. ``skip_conflicts_on``: unique
    columns; a row that would repeat their values is not inserted (``ON CONFLICT DO
    NOTHING``, a row earlier in the same rows included)."""
    binds = _binds(table, columns, types)
    statement: UpdateBase | Callable[[str], UpdateBase] = insert(table).values(binds)
    if skip_conflicts_on:

        def statement(dialect: str) -> UpdateBase:
            return (
                upsert(dialect, table)
                .values(binds)
                .on_conflict_do_nothing(index_elements=list(skip_conflicts_on))
            )

    form = _RowsForm(table, tuple(columns), conflict=tuple(skip_conflicts_on))
    return DriverStatement(statement, [f"p_{name}" for name in columns], rows=form)


def update_rows(
    table: Table,
    key: str,
    columns: Sequence[str],
    types: Mapping[str, TypeEngine[Any]] | None = None,
) -> DriverStatement:
    """An UPDATE of ``columns`` of the row whose ``key`` is given (each row's values: the key,
    then the columns), as one statement on PostgreSQL, where the rows' order cannot matter:
    no unique column among ``columns``, and rows another transaction might update too already
    locked by this one. ``types`` as for :func:`insert_rows`."""
    statement = (
        update(table)
        .where(table.c[key] == bindparam(f"p_{key}"))
        .values(_binds(table, columns, types))
    )
    names = [f"p_{key}", *(f"p_{name}" for name in columns)]
    return DriverStatement(statement, names, rows=_RowsForm(table, tuple(columns), key))


def _binds(
    table: Table, columns: Sequence[str], types: Mapping[str, TypeEngine[Any]] | None
) -> dict[str, BindParameter[Any]]:
    """Each column's parameter ``p_<column>``, of the column's type or its entry in ``types``."""
    types = types or {}
    return {
        name: bindparam(f"p_{name}", type_=types.get(name, table.c[name].type)) for name in columns
    }


class _Plan:
    """The statement compiled for one dialect: its SQL text and, per driver parameter, where
    its value is in a caller's row and how it is converted."""

    def __init__(
        self,
        statement: UpdateBase,
        names: tuple[str, ...],
        dialect: Dialect,
        rows: _RowsForm | None,
    ) -> None:
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
        # PostgreSQL (asyncpg's $n parameters): every name's values as one array, in the
        # caller's order.
        self.arrays_sql: str | None = None
        self.column_steps: list[tuple[int, Processor | None]] = []
        self.rows = rows
        if rows is not None and dialect.paramstyle == "numeric_dollar":
            self.arrays_sql = rows.arrays_sql(dialect)
            by_name = {name: process for (_, process), name in zip(self.steps, order, strict=True)}
            self.column_steps = [(i, by_name[name]) for i, name in enumerate(names)]

    def convert(self, row: Sequence[Any]) -> Sequence[Any]:
        return self.sequence(
            [row[i] if process is None else process(row[i]) for i, process in self.steps]
        )

    def arrays(self, rows: Sequence[Sequence[Any]]) -> Sequence[Any]:
        return self.sequence(
            [
                [row[i] for row in rows] if process is None else [process(row[i]) for row in rows]
                for i, process in self.column_steps
            ]
        )


class Rows(NamedTuple):
    """A statement and the rows to execute it for (each row's values in its ``names`` order)."""

    statement: DriverStatement
    rows: Sequence[Sequence[Any]]


# The combined statement of each list of statements, per dialect (a handful of lists: the
# engine's writes that had rows).
_TOGETHER: dict[tuple[str, tuple[DriverStatement, ...]], str] = {}


async def execute_together(connection: AsyncConnection, parts: Iterable[Rows]) -> None:
    """Execute each statement for its rows (those without rows skipped): on PostgreSQL in one
    round trip (above), elsewhere in turn. Every statement must be made by
    :func:`insert_rows` or :func:`update_rows`, and none may read or change what another
    writes."""
    listed = [part for part in parts if part.rows]
    dialect = connection.dialect
    if dialect.paramstyle != "numeric_dollar" or len(listed) < 2:
        for part in listed:
            await part.statement.execute_many(connection, part.rows)
        return
    plans = [part.statement.plan(dialect) for part in listed]
    key = (dialect.name, tuple(part.statement for part in listed))
    sql = _TOGETHER.get(key)
    if sql is None:
        sql = _TOGETHER[key] = _together_sql(plans, dialect)
    arguments: list[Any] = []
    for plan, part in zip(plans, listed, strict=True):
        arguments.extend(plan.arrays(part.rows))
    await connection.exec_driver_sql(sql, dialect.execute_sequence_format(arguments))


def _together_sql(plans: Sequence[_Plan], dialect: Dialect) -> str:
    statements = []
    first = 1
    for plan in plans:
        if plan.rows is None:
            raise ValueError("only statements of insert_rows or update_rows go together")
        statements.append(plan.rows.arrays_sql(dialect, first))
        first += len(plan.column_steps)
    *before, last = statements
    withs = ", ".join(f"w{n}__ AS ({sql})" for n, sql in enumerate(before))
    return f"WITH {withs} {last}"


__all__ = ["DriverStatement", "Rows", "execute_together", "insert_rows", "update_rows"]
