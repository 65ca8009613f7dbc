"""Reading a storm incident: what its Slack message and its verdicts cost as its alerts grow.

Run ``python bench/storm_incident.py`` (about a minute; ``--db sqlite,postgres``, ``--alerts
N`` the incident's alerts, 50,000 by default, ``--repeat`` reads per measurement). Issue 16: a
storm of 3,000 alerts/s into 20 incidents leaves each with tens of thousands of alerts and as
many timeline entries (one per alert), and every read of the incident must stay bounded: the
message re-rendered while the storm goes on, the verifier's verdict, the scorecard, the
exemplars, the escalation ladder.

How: a fresh database migrated by Ballast (a SQLite file, or a PostgreSQL database made for
the run), one incident of ``support-assistant/tool-failure-spike`` with ``--alerts`` firing
alerts and one ``alert_firing`` timeline entry each, plus its own entries (opened, a verdict,
a scorecard), written directly with SQLAlchemy Core. Then, in this process:

- **message**: ``load_incident_detail`` as the Slack announcer calls it (a sample of the
  alerts, the timeline entries a message reads);
- **sample**: the part of it that reads the alerts (``alerts_sample``: the first alert, then
  firing ones first, ``MESSAGE_ALERT_SAMPLE`` in all);
- **verdict**: the verifier's read of the incident's earlier verdicts (``timeline_of`` with
  ``kinds``);
- **full**: the whole timeline, as the CLI and the postmortem read it;
- **page**: what the console's page of the incident reads: the detail with its alerts and
  per-alert entries limited (``PAGE_ALERTS``, ``PAGE_ALERT_ENTRIES``), and the alerts started
  in each minute for its chart;
- **detail**: the API's detail without limits (every alert, the whole timeline).

Each is timed (best and median of ``--repeat``), with the process's peak resident size over
the reads (``/proc/self/clear_refs`` resets it first), so a read that materialises every entry
shows as memory as well as time.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != REPO / "bench"]
sys.path.insert(0, str(REPO))
sys.path.insert(1, str(REPO / "bench"))

from ingest import PG_ADMIN_DSN, reset_postgres  # noqa: E402
from sqlalchemy import insert  # noqa: E402

from actions.registry import default_registry  # noqa: E402
from bot.incidents import detail as incident_detail  # noqa: E402
from bot.incidents.timeline import TimelineKind  # noqa: E402
from bot.runbooks.catalog import LiveCatalog  # noqa: E402
from bot.runbooks.loader import load_catalog  # noqa: E402
from bot.slack.view import MESSAGE_ALERT_SAMPLE  # noqa: E402
from bot.store import incidents as repo  # noqa: E402
from bot.store.database import Database  # noqa: E402
from bot.store.tables import Incident, IncidentAlert, TimelineEntry, table_of  # noqa: E402

DATABASE = "bench_storm_incident"
RUNBOOK = "support-assistant/tool-failure-spike"
CHUNK = 5_000


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")


async def fill(db: Database, alerts: int) -> int:
    """One storm incident with ``alerts`` alerts and an entry each; returns its id."""
    now = datetime.now(UTC)
    group = {"service": "support-assistant", "tool": "search"}
    async with db.transaction() as session:
        connection = await session.connection()
        result = await connection.execute(
            insert(table_of(Incident)).returning(table_of(Incident).c.id),
            {
                "key": f"rb:{RUNBOOK}|storm",
                "open_key": f"rb:{RUNBOOK}|storm",
                "runbook_id": RUNBOOK,
                "status": "triggered",
                "title": "Tool failures",
                "severity": "page",
                "service": "support-assistant",
                "group_labels": group,
                "alert_count": alerts,
                "firing_count": alerts,
                "detected_at": now,
                "opened_at": now,
                "reopen_count": 0,
                "updated_at": now,
            },
        )
        incident_id = int(result.scalar_one())
        system = [
            (TimelineKind.OPENED, {"runbook_id": RUNBOOK, "group_labels": group}),
            (
                TimelineKind.MITIGATION_VERIFIED,
                {
                    "mitigation_id": "disable-tool",
                    "generation": 1,
                    "verdict": "recovered",
                    "checked_at": now.isoformat(),
                    "values": [],
                },
            ),
            (
                TimelineKind.SCORECARD,
                {
                    "key": "open:scorecard:0",
                    "moment": "open",
                    "label": "at open",
                    "taken_at": now.isoformat(),
                    "panels": [],
                },
            ),
        ]
        await connection.execute(
            insert(table_of(TimelineEntry)),
            [
                {
                    "incident_id": incident_id,
                    "at": now,
                    "actor": "ballast",
                    "kind": kind.value,
                    "summary": kind.value,
                    "details": details,
                }
                for kind, details in system
            ],
        )
    for start in range(0, alerts, CHUNK):
        async with db.transaction() as session:
            connection = await session.connection()
            rows = range(start, min(alerts, start + CHUNK))
            labels = [{**group, "alertname": "ToolCallFailureRate", "pod": f"p{n}"} for n in rows]
            await connection.execute(
                insert(table_of(IncidentAlert)),
                [
                    {
                        "incident_id": incident_id,
                        "fingerprint": f"{n:016x}",
                        "status": "firing",
                        "starts_at": now - timedelta(seconds=n),
                        "labels": label,
                        "annotations": {"summary": "tool failures above 20%"},
                        "source": "alertmanager",
                        "first_seen_at": now,
                        "last_seen_at": now,
                    }
                    for n, label in zip(rows, labels, strict=True)
                ],
            )
            await connection.execute(
                insert(table_of(TimelineEntry)),
                [
                    {
                        "incident_id": incident_id,
                        "at": now,
                        "actor": "alertmanager",
                        "kind": TimelineKind.ALERT_FIRING.value,
                        "summary": "ToolCallFailureRate firing",
                        "details": {"fingerprint": f"{n:016x}", "labels": label},
                    }
                    for n, label in zip(rows, labels, strict=True)
                ],
            )
    return incident_id


async def measure(read: Callable[[], Awaitable[Any]], repeat: int) -> tuple[float, float, float]:
    """(best ms, median ms, peak RSS MB over the reads)."""
    await read()  # statements prepared, caches warm
    reset_peak()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        await read()
        times.append((time.perf_counter() - started) * 1000)
    return min(times), statistics.median(times), peak_rss_mb()


async def run(db_name: str, alerts: int, repeat: int, workdir: Path) -> list[tuple[str, ...]]:
    if db_name == "postgres":
        await reset_postgres(DATABASE)
        url = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
        url = f"{url}/{DATABASE}"
    else:
        url = f"sqlite+aiosqlite:///{workdir / 'storm.db'}"
    db = Database(url)
    await db.migrate()
    load = load_catalog([REPO / "runbooks"])
    assert load.catalog is not None, load.diagnostics
    catalog, registry = LiveCatalog(load.catalog), default_registry()
    started = time.perf_counter()
    incident_id = await fill(db, alerts)
    filled = time.perf_counter() - started
    message_kinds = getattr(incident_detail, "SUMMARY_TIMELINE_KINDS", None)

    async def message() -> None:
        extra = {} if message_kinds is None else {"timeline_kinds": message_kinds}
        await incident_detail.load_incident_detail(
            db, catalog, registry, incident_id, alert_limit=MESSAGE_ALERT_SAMPLE, **extra
        )

    async def sample() -> None:
        async with db.sessions() as session:
            await repo.alerts_sample(session, incident_id, MESSAGE_ALERT_SAMPLE)

    async def verdict() -> None:
        async with db.sessions() as session:
            try:
                await repo.timeline_of(
                    session, incident_id, kinds=[TimelineKind.MITIGATION_VERIFIED]
                )
            except TypeError:  # a tree before ``kinds``: what the verifier read then
                await repo.timeline_of(session, incident_id)

    async def full() -> None:
        async with db.sessions() as session:
            await repo.timeline_of(session, incident_id)

    page_limits = {}
    if hasattr(repo, "alert_starts_per_minute"):  # a tree before the bounded page reads it all
        from bot.web.incidents import PAGE_ALERT_ENTRIES, PAGE_ALERTS

        page_limits = {"alert_limit": PAGE_ALERTS, "alert_entries_limit": PAGE_ALERT_ENTRIES}

    async def page() -> None:
        await incident_detail.load_incident_detail(
            db, catalog, registry, incident_id, **page_limits
        )
        if page_limits:
            async with db.sessions() as session:
                await repo.alert_starts_per_minute(session, incident_id)

    async def detail() -> None:
        await incident_detail.load_incident_detail(db, catalog, registry, incident_id)

    rows = []
    reads = (
        ("message", message),
        ("sample", sample),
        ("verdict", verdict),
        ("full", full),
        ("page", page),
        ("detail", detail),
    )
    for name, read in reads:
        whole = name in ("full", "detail") or (name == "page" and not page_limits)
        best, median, peak = await measure(read, max(1, repeat // 4) if whole else repeat)
        rows.append((db_name, name, f"{best:,.1f}", f"{median:,.1f}", f"{peak:,.0f}"))
    await db.close()
    print(f"{db_name}: {alerts:,} alerts written in {filled:.1f} s", file=sys.stderr)
    return rows


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="sqlite,postgres")
    parser.add_argument("--alerts", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    table = [("db", "read", "best ms", "median ms", "peak RSS MB")]
    with tempfile.TemporaryDirectory(prefix="ballast-storm-incident-") as folder:
        for db_name in args.db.split(","):
            table += await run(db_name, args.alerts, args.repeat, Path(folder))
    print(f"one incident with {args.alerts:,} alerts and as many timeline entries")
    print("| " + " | ".join(table[0]) + " |")
    print("| " + " | ".join("---" if i < 2 else "---:" for i in range(len(table[0]))) + " |")
    for row in table[1:]:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    asyncio.run(main())
