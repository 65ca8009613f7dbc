"""timeline: an index by (incident, kind); inbox: drop ``(processed_at, id)``, read by nothing

- ``ix_timeline_incident_id_kind_id``: a storm incident has one timeline entry per alert (tens
  of thousands). The verifier, the scorecard, the exemplars, the escalation ladder and the
  incident's Slack message look for entries of a few kinds of their own; they read every entry
  before (about a second of the event loop and over 100 MB per read at 50,000 alerts).
- ``ix_inbox_alerts_processed_at_id``: every query of the inbox by ``processed_at`` asks for
  the unprocessed rows (the engine's claim, the lag gauge, the backlog count), which the
  partial index of 0012 serves. The old index still cost a write for every stored alert and
  two for every processed one, on the webhook's and the engine's paths, and grew with every
  row the inbox keeps.

Like 0012, the index is built in the migration's transaction (not ``CONCURRENTLY``): writes to
the timeline wait for the build during the upgrade.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_timeline_incident_id_kind_id", "timeline", ["incident_id", "kind", "id"])
    op.drop_index("ix_inbox_alerts_processed_at_id", table_name="inbox_alerts")


def downgrade() -> None:
    op.create_index("ix_inbox_alerts_processed_at_id", "inbox_alerts", ["processed_at", "id"])
    op.drop_index("ix_timeline_incident_id_kind_id", table_name="timeline")
