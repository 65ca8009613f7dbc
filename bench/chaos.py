"""Soak: three replicas under chaos for as long as asked, then the invariant checker.

The rig of ``tests/chaos/`` (``tests/chaos/cluster.py``) run longer: an alert storm and owners'
runs and undos through a round-robin client, a replica SIGKILLed and restarted every few
seconds, PostgreSQL connections terminated, Slack answering 429 and 5xx, the control gateway
timing out. Prints the figures and the violations (exit status 1 if there are any).

Run: ``python bench/chaos.py --seconds 300 --seed 7`` with ``BALLAST_TEST_POSTGRES_URL`` set
(a new database is made and dropped on that server).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != REPO / "bench"]
sys.path.insert(0, str(REPO))

from tests.chaos.cluster import cluster  # noqa: E402
from tests.chaos.invariants import violations  # noqa: E402
from tests.conftest import fresh_database_url  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=300.0, help="chaos duration")
    parser.add_argument("--seed", type=int, default=15, help="the fault schedule's seed")
    parser.add_argument("--alerts-per-second", type=float, default=8.0, help="webhooks/s (x5)")
    args = parser.parse_args()
    if not os.environ.get("BALLAST_TEST_POSTGRES_URL"):
        parser.error("set BALLAST_TEST_POSTGRES_URL (a PostgreSQL server to make a database on)")
    with (
        tempfile.TemporaryDirectory() as tmp,
        fresh_database_url("postgres", Path(tmp), "ballast_soak") as url,
        cluster(Path(tmp), url, args.seed) as rig,
    ):
        started = time.monotonic()
        asyncio.run(rig.run(args.seconds, alerts_per_second=args.alerts_per_second))
        rig.settle()
        found = violations(
            url,
            acked=rig.tally.alerts_acked,
            statuses=dict(rig.tally.statuses),
            gateway_applied=dict(rig.gateway.applied),
            slack_top_level_messages=len(rig.slack.messages("C0INCIDENT")),
        )
        figures = {
            **rig.tally.figures(),
            "seconds": args.seconds,
            "seed": args.seed,
            "wall_seconds": round(time.monotonic() - started, 1),
            "gateway_requests": len(rig.gateway.requests),
            "gateway_keys_applied": len(rig.gateway.applied),
            "slack_calls": rig.slack.count(),
            "violations": found,
        }
    print(json.dumps(figures, indent=2))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
