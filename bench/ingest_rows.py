"""The webhook path's pure-Python row work, per notification: ``python bench/ingest_rows.py``.

What the inbox writer does for each webhook before the database sees it — the INSERT's row
values for a 5-alert Alertmanager notification (``InsertPlan.rows`` + ``flat`` + ``sql``) —
plus, where the tree has ``bot.telemetry``, the two ``telemetry.enabled()`` tests a webhook
makes while tracing is off. CPU time (``time.process_time``), best of 7 runs of 20,000, so
other work on a shared machine reaches it far less than it reaches ``bench/ingest.py``. Run
it with ``PYTHONPATH`` at two trees to compare them (docs/benchmarks.md, "OpenTelemetry").
"""

from __future__ import annotations

import time
import timeit
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect

from bot.intake import parse_payload
from bot.intake.alert import AlertSource
from bot.store.inbox_sql import InsertPlan

RUNS = 20_000
REPEATS = 7


def notification(now: datetime, size: int = 5) -> dict[str, object]:
    alerts = [
        {
            "status": "firing",
            "labels": {
                "alertname": "ToolCallFailureRate",
                "service": f"support-assistant-{i}",
                "tool": f"tool-{i}",
                "env": "prod",
            },
            "annotations": {"summary": "tool calls failing"},
            "startsAt": now.isoformat(),
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph?g0.expr=up",
            "fingerprint": f"{i:016x}",
        }
        for i in range(size)
    ]
    return {
        "version": "4",
        "groupKey": "{}:{}",
        "status": "firing",
        "receiver": "ballast",
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": alerts,
    }


def tracing_checks() -> Callable[[], None]:
    try:
        from bot import telemetry
    except ImportError:  # a tree from before tracing
        return lambda: None

    def checks() -> None:
        telemetry.enabled()  # the webhook's
        telemetry.enabled()  # the store's

    return checks


def main() -> None:
    now = datetime.now(UTC)
    batch = parse_payload(AlertSource.ALERTMANAGER, notification(now), now=now)
    checks = tracing_checks()
    dialects: tuple[tuple[str, Dialect], ...] = (
        ("sqlite", sqlite.dialect()),
        ("postgresql", postgresql.asyncpg.dialect()),  # type: ignore[no-untyped-call]
    )
    for name, dialect in dialects:
        plan = InsertPlan.of(dialect)

        def one(plan: InsertPlan = plan) -> None:
            checks()
            rows = list(plan.rows(batch, now))
            plan.flat(rows)
            plan.sql(len(rows))

        best = min(timeit.repeat(one, number=RUNS, repeat=REPEATS, timer=time.process_time))
        print(f"{name:<10} {best / RUNS * 1e6:6.2f} µs per 5-alert webhook")


if __name__ == "__main__":
    main()
