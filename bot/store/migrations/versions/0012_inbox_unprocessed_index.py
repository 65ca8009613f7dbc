"""inbox: a partial index of the unprocessed rows, by id, for the engine's claim

Processed rows stay in the inbox. PostgreSQL's planner does not take ``processed_at IS NULL``
on ``(processed_at, id)`` as fixing the order by id, so the claim (``ORDER BY id LIMIT n``)
walked the primary key over every processed row: 62 ms with 50,000 of them, about 1 s with
1,000,000. Through this index: under a millisecond. SQLite's planner, once it has statistics,
may scan the table in id order the same way.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


UNPROCESSED = sa.text("processed_at IS NULL")


def upgrade() -> None:
    op.create_index(
        "ix_inbox_alerts_unprocessed",
        "inbox_alerts",
        ["id"],
        unique=False,
        postgresql_where=UNPROCESSED,
        sqlite_where=UNPROCESSED,
    )


def downgrade() -> None:
    op.drop_index("ix_inbox_alerts_unprocessed", table_name="inbox_alerts")
