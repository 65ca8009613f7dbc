"""Three replicas under chaos for about a minute; then every invariant holds.

Alert storm and owners' runs and undos over a round-robin client; a replica SIGKILLed and
restarted every few seconds; PostgreSQL connections terminated mid-transaction; the Slack
emulation answering 429 and 5xx; the control gateway holding requests past their timeout.
The schedule is seeded, so a failure can be replayed with ``bench/chaos.py --seed``.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from tests.chaos.cluster import cluster
from tests.chaos.invariants import violations
from tests.conftest import fresh_database_url

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

SECONDS = 45.0
SEED = 15


def test_three_replicas_under_chaos_keep_every_invariant(tmp_path: Path) -> None:
    with (
        fresh_database_url("postgres", tmp_path, "ballast_chaos") as url,
        cluster(tmp_path, url, SEED) as rig,
    ):
        asyncio.run(rig.run(SECONDS))
        rig.settle()
        figures = rig.tally.figures()
        print(json.dumps(figures))
        found = violations(
            url,
            acked=rig.tally.alerts_acked,
            statuses=dict(rig.tally.statuses),
            gateway_applied=dict(rig.gateway.applied),
            slack_top_level_messages=len(rig.slack.messages("C0INCIDENT")),
        )
        assert found == [], "\n".join(found)
        # The chaos did happen (a suite whose faults never fired proves nothing).
        assert figures["kills"] >= 2
        assert figures["pg_terminations"] >= 3
        assert figures["slack_faults_met"] >= 5
        assert len(rig.tally.alerts_acked) >= 500
        assert sum(figures["actions"].values()) >= 50
        assert rig.gateway.requests, "no mitigation reached the gateway"
