"""Ballast's own traces: OpenTelemetry spans for the path of an alert, off unless configured.

Spans are made only when :func:`bot.telemetry.setup.configure` installed an SDK (the server
with ``OTEL_EXPORTER_OTLP_ENDPOINT`` set); otherwise every helper here returns at once, so the
webhook's hot path pays one boolean test, not a no-op span (measured: docs/benchmarks.md).

The webhook, the engine, the executor and the Slack delivery hand work to each other through
the database, so a span's context travels with the row as a W3C ``traceparent`` string
(:func:`traceparent`, :func:`parent_context`, :func:`link`). Attribute names: :mod:`.names`.
"""

from __future__ import annotations

from bot.telemetry.spans import (
    enabled,
    link,
    parent_context,
    set_tracer,
    span,
    traceparent,
)

__all__ = ["enabled", "link", "parent_context", "set_tracer", "span", "traceparent"]
