"""The one place that picks PostgreSQL's or SQLite's ``INSERT ... ON CONFLICT``.

Both dialects spell the clause the same way (``on_conflict_do_nothing``,
``on_conflict_do_update`` with ``index_elements``, ``index_where``, ``set_``, ``where`` and
``excluded``), but SQLAlchemy has it only on each dialect's own ``insert``; this returns the
right one for the session (or the dialect name) at hand.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

Upsert = postgresql.Insert | sqlite.Insert


def upsert(where: AsyncSession | str, table: Any) -> Upsert:
    """``INSERT INTO table`` that can take an ``ON CONFLICT`` clause, in the dialect of
    ``where``: a session, or a dialect name (``"postgresql"``, ``"sqlite"``)."""
    dialect = where if isinstance(where, str) else where.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


__all__ = ["Upsert", "upsert"]
