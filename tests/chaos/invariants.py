"""The chaos suite's invariant checker: the end state, from the database and from what the
gateway and the Slack emulation received, against what the client was answered.

:func:`violations` returns one line per broken invariant (empty: all hold):

1. every 2xx'd alert was stored and processed exactly once (one inbox row, processed);
2. one open incident per key;
3. each mitigation applied at most once per generation (one ``mitigation_applied`` per
   idempotency key; the gateway applied each key at most once) and undone at most once;
4. no execution left ``running`` or ``undoing``;
5. Slack: nothing left to send, and one incident message per incident (no duplicate post);
6. no 5xx answer other than 503.

``tests/chaos/test_invariants.py`` injects a double apply and checks that this fails.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

import asyncpg


def _plain(url: str) -> str:
    return "postgresql://" + url.split("://", 1)[1]


async def _fetch(url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(_plain(url))
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


def fetch(url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    return asyncio.run(_fetch(url, sql, *args))


def pending_work(url: str) -> dict[str, int]:
    """What is still to be done, by kind (empty when nothing): alerts unprocessed, executions
    in flight, Slack calls unsent. A settle that times out names what was left."""
    [row] = fetch(
        url,
        "SELECT (SELECT count(*) FROM inbox_alerts WHERE processed_at IS NULL) AS inbox, "
        "(SELECT count(*) FROM executions WHERE state IN ('running', 'undoing')) AS running, "
        "(SELECT count(*) FROM slack_outbox WHERE state IN ('pending', 'sending')) AS slack",
    )
    return {k: row[k] for k in ("inbox", "running", "slack") if row[k]}


def pending_detail(url: str, limit: int = 12) -> list[str]:
    """The rows behind :func:`pending_work`, one line each, for a settle that timed out."""
    lines = [
        f"outbox #{r['id']} {r['kind']} {r['idempotency_key']} lane={r['lane']} "
        f"state={r['state']} attempts={r['attempts']} in_doubt={r['in_doubt']} "
        f"not_before={r['not_before']} claimed_at={r['claimed_at']} error={r['error']!r} "
        f"post={r['post']} message={r['message']}"
        for r in fetch(
            url,
            "SELECT o.*, (SELECT p.state FROM slack_outbox p WHERE p.incident_id = o.incident_id "
            "AND p.kind = 'post' ORDER BY p.id DESC LIMIT 1) AS post, "
            "(SELECT m.ts FROM slack_messages m WHERE m.incident_id = o.incident_id) AS message "
            "FROM slack_outbox o WHERE o.state IN ('pending', 'sending') ORDER BY o.id LIMIT $1",
            limit,
        )
    ]
    lines += [
        f"execution {r['id']} #{r['incident_id']} {r['mitigation_id']} {r['state']}"
        for r in fetch(
            url,
            "SELECT id, incident_id, mitigation_id, state FROM executions "
            "WHERE state IN ('running', 'undoing') ORDER BY id LIMIT $1",
            limit,
        )
    ]
    return lines


def violations(
    url: str,
    *,
    acked: Iterable[str],
    statuses: dict[int, int],
    gateway_applied: dict[str, int],
    slack_top_level_messages: int | None,
) -> list[str]:
    found: list[str] = []
    acked = set(acked)

    inbox = fetch(
        url,
        "SELECT labels->>'n' AS n, count(*) AS rows, count(processed_at) AS processed "
        "FROM inbox_alerts GROUP BY labels->>'n'",
    )
    by_n = {r["n"]: r for r in inbox}
    missing = sorted(acked - set(by_n), key=int)
    if missing:
        found.append(f"{len(missing)} 2xx'd alert(s) never stored, e.g. n={missing[:5]}")
    for n in acked & set(by_n):
        row = by_n[n]
        if row["rows"] != 1 or row["processed"] != 1:
            found.append(f"alert n={n}: {row['rows']} row(s), {row['processed']} processed")

    for row in fetch(
        url,
        "SELECT key, count(*) AS open FROM incidents WHERE status <> 'resolved' "
        "GROUP BY key HAVING count(*) > 1",
    ):
        found.append(f"{row['open']} open incidents for key {row['key']!r}")

    for row in fetch(
        url,
        "SELECT details->>'idempotency_key' AS key, count(*) AS n FROM timeline "
        "WHERE kind = 'mitigation_applied' GROUP BY 1 HAVING count(*) > 1",
    ):
        found.append(f"generation {row['key']} applied {row['n']} times (timeline)")
    for key, applies in gateway_applied.items():
        if applies > 1:
            found.append(f"the gateway applied {key} {applies} times")
    undone_rows = {
        (r["incident_id"], r["mitigation_id"]): r["n"]
        for r in fetch(
            url,
            "SELECT incident_id, mitigation_id, count(*) AS n FROM executions "
            "WHERE state = 'undone' GROUP BY 1, 2",
        )
    }
    for row in fetch(
        url,
        "SELECT incident_id, details->>'mitigation_id' AS mitigation_id, count(*) AS n "
        "FROM timeline WHERE kind = 'mitigation_undone' GROUP BY 1, 2",
    ):
        generations = undone_rows.get((row["incident_id"], row["mitigation_id"]), 0)
        if row["n"] > generations:
            found.append(
                f"#{row['incident_id']} {row['mitigation_id']}: undone {row['n']} times "
                f"for {generations} undone generation(s)"
            )

    for row in fetch(
        url,
        "SELECT id, incident_id, mitigation_id, state FROM executions "
        "WHERE state IN ('running', 'undoing')",
    ):
        found.append(
            f"execution {row['id']} (#{row['incident_id']} {row['mitigation_id']}) "
            f"left {row['state']}"
        )

    [unsent] = fetch(
        url, "SELECT count(*) AS n FROM slack_outbox WHERE state IN ('pending', 'sending')"
    )
    if unsent["n"]:
        found.append(f"{unsent['n']} Slack call(s) never sent")
    if slack_top_level_messages is not None:
        [posted] = fetch(url, "SELECT count(*) AS n FROM slack_messages")
        if slack_top_level_messages != posted["n"]:
            found.append(
                f"Slack shows {slack_top_level_messages} incident message(s) for "
                f"{posted['n']} incident(s) posted (a duplicate or a lost post)"
            )

    errors = {code: n for code, n in statuses.items() if code >= 500 and code != 503}
    if errors:
        found.append(f"5xx answers other than 503: {errors}")
    return found
