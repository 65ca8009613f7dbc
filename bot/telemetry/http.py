"""Outgoing HTTP traced: a CLIENT span per request, and W3C ``traceparent`` sent with it.

Installed on the server's one ``httpx.AsyncClient`` (``bot.app``) only when tracing is on, so
every call an action or a backend makes (``http_request``, Unleash, PagerDuty, Opsgenie) and
every Prometheus query carries the trace context of the span that made it, without
``actions/`` knowing about tracing. A ``traceparent`` the runbook set itself is left alone.
"""

from __future__ import annotations

import httpx
from opentelemetry import propagate
from opentelemetry.trace import SpanKind, StatusCode

from bot.telemetry.spans import span


class TracingTransport(httpx.AsyncBaseTransport):
    """Wraps a transport: each request in a span, its context injected into the headers."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        attributes: dict[str, str | int | None] = {
            "http.request.method": request.method,
            "server.address": url.host,
            "server.port": url.port or (443 if url.scheme == "https" else 80),
            # Without the query: a query string may carry a token.
            "url.full": str(url.copy_with(query=None, fragment=None)),
        }
        with span(request.method, attributes, kind=SpanKind.CLIENT) as current:
            if "traceparent" not in request.headers:
                carrier: dict[str, str] = {}
                propagate.inject(carrier)
                for name, value in carrier.items():
                    request.headers[name] = value
            response = await self._inner.handle_async_request(request)
            current.set_attribute("http.response.status_code", response.status_code)
            if response.status_code >= 400:
                current.set_status(StatusCode.ERROR)
            return response

    async def aclose(self) -> None:
        await self._inner.aclose()
