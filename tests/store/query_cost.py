"""What a query costs the database, measured so that growth shows: PostgreSQL's rows read
from a table (EXPLAIN ANALYZE: returned plus removed by a filter), SQLite's virtual machine
steps (sqlite3's progress handler, called at every step)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text


def literal_sql(conn: Any, query: Any) -> str:
    return str(query.compile(conn.sync_connection, compile_kwargs={"literal_binds": True}))


async def query_cost(db: Any, query: Any, table: str, *, seqscan: bool = True) -> int:
    """``seqscan=False``: PostgreSQL plans as for a large table (a test's tables are small
    enough that a sequential scan wins, which would hide whether an index serves the query)."""
    async with db.engine.connect() as conn:
        sql = literal_sql(conn, query)
        if not db.is_sqlite:
            if not seqscan:
                await conn.execute(text("SET enable_seqscan = off"))
            rows = await conn.execute(text("EXPLAIN (ANALYZE, FORMAT JSON) " + sql))
            nodes, read = [rows.scalar_one()[0]["Plan"]], 0
            while nodes:
                node = nodes.pop()
                if node.get("Relation Name") == table:
                    read += int(node["Actual Rows"]) + int(node.get("Rows Removed by Filter", 0))
                nodes.extend(node.get("Plans", []))
            return read
        raw = (await conn.get_raw_connection()).driver_connection._conn
        steps = 0

        def step() -> int:
            nonlocal steps
            steps += 1
            return 0  # go on

        raw.set_progress_handler(step, 1)
        try:
            raw.execute(sql).fetchall()
        finally:
            raw.set_progress_handler(None, 1)
        return steps
