"""Spans that cost nothing while tracing is off, and W3C trace context carried by rows."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import INVALID_SPAN, Link, Span, SpanKind, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

AttributeValue = str | int | bool | float

_PROPAGATOR = TraceContextTextMapPropagator()
_tracer: Tracer | None = None


def set_tracer(tracer: Tracer | None) -> None:
    """Turn Ballast's spans on (a tracer of an installed SDK) or off (None).

    :func:`bot.telemetry.setup.configure` calls it; tests hand in a tracer of their own
    provider, which leaves the process-wide provider (and FastAPI's spans) alone.
    """
    global _tracer
    _tracer = tracer


def enabled() -> bool:
    return _tracer is not None


@contextlib.contextmanager
def span(
    name: str,
    attributes: Mapping[str, AttributeValue | None] | None = None,
    *,
    parent: str | None = None,
    links: Sequence[Link] = (),
    kind: SpanKind = SpanKind.INTERNAL,
    start_time: int | None = None,
    end_time: int | None = None,
) -> Iterator[Span]:
    """A span made current for the block; a non-recording one, and no work, while off.

    ``parent``: a stored ``traceparent`` to continue (work handed over through the database);
    without it, the current span is the parent. Attributes whose value is None are left out.
    ``start_time`` (ns since the epoch): for a span made after the work it stands for;
    ``end_time`` too, when that work also ended before the block (else it ends with it).
    """
    tracer = _tracer
    if tracer is None:
        yield INVALID_SPAN
        return
    context = parent_context(parent) if parent else None
    present = {k: v for k, v in (attributes or {}).items() if v is not None}
    with tracer.start_as_current_span(
        name,
        context=context,
        kind=kind,
        attributes=present,
        links=links,
        start_time=start_time,
        end_on_exit=end_time is None,
    ) as current:
        try:
            yield current
        finally:
            if end_time is not None:
                current.end(end_time=end_time)


def traceparent() -> str | None:
    """The current span as a W3C ``traceparent`` value, to store with a row (None while off
    or outside any span)."""
    if _tracer is None:
        return None
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier.get("traceparent")


def parent_context(value: str | None) -> Context | None:
    """The context a stored ``traceparent`` names (None if absent or malformed)."""
    if not value:
        return None
    context = _PROPAGATOR.extract({"traceparent": value})
    if not trace.get_current_span(context).get_span_context().is_valid:
        return None
    return context


def link(value: str | None) -> Link | None:
    """A span link to the span a stored ``traceparent`` names (None if absent or malformed)."""
    context = parent_context(value)
    if context is None:
        return None
    return Link(trace.get_current_span(context).get_span_context())
