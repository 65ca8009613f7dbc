"""The inbox writer's INSERT as hand-built driver SQL, and the inbox's row values.

Why by hand: per group, SQLAlchemy's compile, executemany batching and result typing cost more
CPU than the database's own work — the webhook ingest ceiling (bench/ingest.py, "Webhook ingest"
in docs/benchmarks.md) is set by this statement. What keeps it exactly equal to the ORM's
insert: the column list and each value's conversion come from the ``InboxAlert`` table and
SQLAlchemy's own bind processors for the dialect, and tests/store/test_inbox_writer.py checks
that the writer's rows equal the ORM path's on both databases. Nothing from a request is ever
part of the SQL text: table and column names come from the table definition, values go as
parameters.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, ClassVar

import orjson
from sqlalchemy import JSON
from sqlalchemy.engine import Dialect

from bot.intake.alert import Alert, AlertBatch
from bot.store.tables import InboxAlert, table_of


class InsertPlan:
    """The writer's INSERT as driver SQL, with SQLAlchemy's own conversion of each value.

    The columns and their bind processors come from the ``InboxAlert`` table and the
    dialect, so the stored values are exactly what SQLAlchemy would have sent (SQLite's
    datetime text, JSON text); RETURNING gives the key columns back as stored, which match the
    converted values sent. Statements are made per row count and kept (a few dozen sizes).
    """

    _plans: ClassVar[dict[str, InsertPlan]] = {}
    KEY = ("fingerprint", "starts_at", "status")

    def __init__(self, dialect: Dialect) -> None:
        table = table_of(InboxAlert)
        per_alert = [c.name for c in table.columns if c.name not in ("id", *PER_WEBHOOK)]
        # Per-alert columns first, then those of the whole webhook, converted once per webhook.
        self.columns = [*per_alert, *PER_WEBHOOK]
        processors: dict[str, Callable[[Any], Any] | None] = {
            name: (
                json_text
                if isinstance(table.c[name].type, JSON)
                else table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
            )
            for name in self.columns
        }
        self.alert_processors = [(name, processors[name]) for name in per_alert]
        self.webhook_processors = [(name, processors[name]) for name in PER_WEBHOOK]
        self.key_at = [self.columns.index(name) for name in self.KEY]
        self.numbered = dialect.paramstyle == "numeric_dollar"
        self.casts = [
            "::json" if self.numbered and isinstance(table.c[name].type, JSON) else ""
            for name in self.columns
        ]
        key_columns = ", ".join(self.KEY)
        # Names from the table definition, values only as parameters: nothing from a request.
        self.head = f"INSERT INTO {table.name} ({', '.join(self.columns)}) VALUES "  # noqa: S608
        self.tail = f" ON CONFLICT ({key_columns}) DO NOTHING RETURNING {key_columns}"
        self._sql: dict[int, str] = {}

    @classmethod
    def of(cls, dialect: Dialect) -> InsertPlan:
        plan = cls._plans.get(dialect.name)
        if plan is None:
            plan = cls._plans[dialect.name] = cls(dialect)
        return plan

    def rows(
        self, batch: AlertBatch, now: datetime, traceparent: str | None = None
    ) -> Iterator[list[Any]]:
        """The converted values of each alert of ``batch``, in ``columns`` order."""
        shared = converted(self.webhook_processors, webhook_row(batch, now, traceparent))
        for alert in batch.alerts:
            yield converted(self.alert_processors, alert_row(alert)) + shared

    def key(self, values: list[Any]) -> tuple[Any, ...]:
        return tuple(values[i] for i in self.key_at)

    def flat(self, rows: list[list[Any]]) -> tuple[Any, ...]:
        return tuple(value for row in rows for value in row)

    def sql(self, count: int) -> str:
        sql = self._sql.get(count)
        if sql is None:
            width = len(self.columns)
            if self.numbered:
                groups = (
                    "("
                    + ", ".join(f"${n * width + i + 1}{self.casts[i]}" for i in range(width))
                    + ")"
                    for n in range(count)
                )
            else:
                groups = ("(" + ", ".join("?" * width) + ")" for _ in range(count))
            sql = self.head + ", ".join(groups) + self.tail
            if len(self._sql) < 256:
                self._sql[count] = sql
        return sql


def row_of(
    alert: Alert, batch: AlertBatch, now: datetime, traceparent: str | None = None
) -> dict[str, Any]:
    return alert_row(alert) | webhook_row(batch, now, traceparent)


def alert_row(alert: Alert) -> dict[str, Any]:
    return {
        "source": alert.source.value,
        "fingerprint": alert.fingerprint,
        "status": alert.status.value,
        "starts_at": alert.starts_at,
        "ends_at": alert.ends_at,
        "labels": alert.labels,
        "annotations": alert.annotations,
        "generator_url": alert.generator_url,
    }


# Columns whose values are the same for every alert of one webhook.
PER_WEBHOOK = (
    "group_key",
    "truncated_alerts",
    "received_at",
    "processed_at",
    "incident_id",
    "outcome",
    "traceparent",
)


def webhook_row(batch: AlertBatch, now: datetime, traceparent: str | None = None) -> dict[str, Any]:
    return {
        "group_key": batch.group_key,
        "truncated_alerts": batch.truncated_alerts,
        "received_at": now,
        "processed_at": None,
        "incident_id": None,
        "outcome": None,
        "traceparent": traceparent,
    }


def json_text(value: Any) -> str:
    """Labels and annotations as JSON text, with orjson: five times faster than the stdlib
    encoder, which was a tenth of a stored alert's CPU. They are string-to-string maps (the wire
    models checked), which orjson writes as exactly the JSON values the stdlib reads back."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # orjson.JSONEncodeError: something only the stdlib can write
        return json.dumps(value)


def converted(
    processors: list[tuple[str, Callable[[Any], Any] | None]], row: dict[str, Any]
) -> list[Any]:
    """Values as SQLAlchemy's column types would bind them (None stays None)."""
    return [
        row[name] if process is None or row[name] is None else process(row[name])
        for name, process in processors
    ]
