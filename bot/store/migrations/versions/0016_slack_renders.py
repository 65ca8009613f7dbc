"""slack_renders: the incident state each Slack message was last rendered from

The Slack announcer renders a change after the change's commit, from an in-memory queue
(``bot.slack.announcer``). A crash, or a render that failed, lost that render: an incident
opened just before could stay without a message until its next change. The announcer now
records, with the outbox rows of each render, the incident's ``updated_at`` it read first; a
catch-up (at start and every minute) renders the incidents whose ``updated_at`` differs.

Every incident already stored counts as rendered as it is now, so that configuring Slack, or
upgrading, does not post the history again.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "slack_renders",
        sa.Column("incident_id", BIG_ID, autoincrement=False, nullable=False),
        sa.Column("incident_updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rendered_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name=op.f("fk_slack_renders_incident_id_incidents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("incident_id", name=op.f("pk_slack_renders")),
    )
    op.execute(
        "INSERT INTO slack_renders (incident_id, incident_updated_at, rendered_at) "
        "SELECT id, updated_at, updated_at FROM incidents"
    )


def downgrade() -> None:
    op.drop_table("slack_renders")
