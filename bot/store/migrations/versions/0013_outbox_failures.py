"""slack_outbox: ``failures``, the transient failures of a row, the exponent of its backoff

The backoff doubled with ``attempts``, which also counts rate-limited tries (each waits its own
Retry-After) and claims taken over from a crashed replica. A row that met a few 429s during a
Slack blip and then one 500 waited minutes: a chaos run left an incident message's update four
minutes out at its ninth attempt. Existing rows start from 0 (their next failure waits ``base``).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("slack_outbox") as batch:
        batch.add_column(sa.Column("failures", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("slack_outbox") as batch:
        batch.drop_column("failures")
