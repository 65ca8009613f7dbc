"""incident_alerts: an index by (incident, status, id) for a message's sample of alerts

A storm incident holds tens of thousands of alerts. Its Slack message shows a sample, firing
ones first, each in arrival order (``bot.store.incidents.alerts_sample``); without this index
the database read and sorted every alert of the incident for each render (15-26 ms at 50,000
alerts, in the engine's path while a storm goes on).

Like 0012 and 0014, the index is built in the migration's transaction (not ``CONCURRENTLY``):
writes to incident_alerts wait for the build during the upgrade.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_incident_alerts_incident_id_status_id",
        "incident_alerts",
        ["incident_id", "status", "id"],
    )


def downgrade() -> None:
    op.drop_index("ix_incident_alerts_incident_id_status_id", table_name="incident_alerts")
