"""Install the OpenTelemetry SDK when the standard environment asks for an OTLP exporter.

Read from the standard variables only (they are the OpenTelemetry SDK's, not Ballast's):
``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` turns tracing on;
``OTEL_SERVICE_NAME`` (default ``ballast``), ``OTEL_RESOURCE_ATTRIBUTES``,
``OTEL_EXPORTER_OTLP_HEADERS``, ``OTEL_BSP_*`` and the other exporter settings are read by the
SDK itself. ``OTEL_SDK_DISABLED=true`` or ``OTEL_TRACES_EXPORTER=none`` keep it off. Spans
leave through a ``BatchSpanProcessor`` (never on the request's path) over OTLP/HTTP protobuf;
:meth:`Tracing.shutdown` flushes what is queued when the server exits.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from bot import __version__
from bot.telemetry.names import TRACER
from bot.telemetry.spans import set_tracer

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
DEFAULT_SERVICE_NAME = "ballast"


@dataclass(frozen=True, slots=True)
class Tracing:
    """The installed SDK: where spans go, and how to flush them at exit."""

    provider: TracerProvider
    endpoint: str
    service_name: str

    def shutdown(self) -> None:
        """Export what is queued (bounded by the processor's export timeout), then stop."""
        set_tracer(None)
        self.provider.shutdown()


def wanted(environ: Mapping[str, str]) -> str | None:
    """The OTLP endpoint the environment names, or None when tracing stays off."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    if environ.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "none":
        return None
    for name in ENDPOINT_VARIABLES:
        value = environ.get(name, "").strip()
        if value:
            return value
    return None


def configure(environ: Mapping[str, str]) -> Tracing | None:
    """Install the SDK as the global tracer provider if :func:`wanted`; else leave the no-op
    tracer (and Ballast's spans off). Once per process: the server calls it at start."""
    endpoint = wanted(environ)
    if endpoint is None:
        return None
    # Imported only when on: the exporter pulls in requests and protobuf.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    resource = Resource.create({SERVICE_VERSION: __version__})
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: DEFAULT_SERVICE_NAME}))
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    # Process-wide too: FastAPI's own request spans (SERVER, with the route) use it.
    trace.set_tracer_provider(provider)
    set_tracer(provider.get_tracer(TRACER, __version__))
    return Tracing(provider, endpoint, str(resource.attributes[SERVICE_NAME]))
