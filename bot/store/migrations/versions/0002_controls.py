"""built-in control store: control_values, control_history, control_revision

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "control_values",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("value", sa.JSON(), nullable=False),
        sa.Column("value_type", sa.String(length=8), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_control_values")),
    )
    op.create_table(
        "control_history",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("before", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("after", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_control_history")),
    )
    with op.batch_alter_table("control_history", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_control_history_key_id"), ["key", "id"], unique=False)
    revision_table = op.create_table(
        "control_revision",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.Column("epoch", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_control_revision")),
    )
    # The single row every control write bumps (and locks); see ControlRevision.
    op.bulk_insert(revision_table, [{"id": 1, "revision": 0, "epoch": uuid.uuid4().hex[:12]}])


def downgrade() -> None:
    op.drop_table("control_revision")
    with op.batch_alter_table("control_history", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_control_history_key_id"))
    op.drop_table("control_history")
    op.drop_table("control_values")
