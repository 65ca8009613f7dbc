"""Alert webhooks: authenticate, bound, parse, commit, then answer.

Status codes follow what Alertmanager does with them: it retries 5xx and network errors and
silently drops anything 4xx (429 included). So overload answers 503, never 429, and a 2xx is
sent only once the alerts are committed.

The endpoints are :class:`~bot.api.direct.DirectRoute` routes: in a storm they are the
server's hottest path, and they read and answer the request themselves.
"""

from __future__ import annotations

import asyncio
import logging
import time

from fastapi import FastAPI, HTTPException, Request, status
from fastapi.responses import JSONResponse
from opentelemetry.trace import StatusCode

from bot import telemetry
from bot.api.auth import require_access
from bot.api.direct import add_direct_route
from bot.api.principals import count_failure
from bot.api.schemas import WebhookReceipt
from bot.api.services import Services, services_of
from bot.auth.roles import Role
from bot.errors import PayloadError
from bot.intake import parse_json_bytes, parse_payload
from bot.intake.alert import AlertBatch, AlertSource
from bot.intake.pagerduty import SIGNATURE_HEADER, SignatureCheck, check_signature
from bot.store.inbox import StoreResult
from bot.store.transient import is_unavailable
from bot.telemetry import names

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = "5"


class BodyTooLarge(Exception):
    pass


async def read_bounded(request: Request, limit: int) -> bytes:
    """Read the body, refusing (before reading it all) anything over ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


async def _receive(request: Request, source: AlertSource) -> JSONResponse:
    services = services_of(request)
    started = time.perf_counter()
    code = 500
    try:
        if telemetry.enabled():
            response = await _traced(request, services, source)
        else:
            response = await _handle(request, services, source)
        code = response.status_code
        return response
    except HTTPException as err:
        code = err.status_code
        raise
    finally:
        services.metrics.webhook_requests.labels(source.value, str(code)).inc()
        services.metrics.webhook_latency.labels(source.value).observe(time.perf_counter() - started)


async def _traced(request: Request, services: Services, source: AlertSource) -> JSONResponse:
    """The webhook's work in a span, under FastAPI's SERVER span of the request (which
    continues the sender's ``traceparent``, if it sent one); the context of its store is kept
    with the inbox rows, for the engine's batch span to link."""
    with telemetry.span(
        f"{names.WEBHOOK} {source.value}", {names.ALERT_SOURCE: source.value}
    ) as current:
        try:
            response = await _handle(request, services, source)
        except HTTPException as err:
            current.set_attribute("http.response.status_code", err.status_code)
            raise
        current.set_attribute("http.response.status_code", response.status_code)
        if response.status_code >= 500:
            current.set_status(StatusCode.ERROR)
        return response


async def _store(services: Services, batch: AlertBatch) -> StoreResult:
    """Group commit (shared with the webhooks arriving at the same moment), bounded in time."""
    async with asyncio.timeout(services.store_timeout):
        if not telemetry.enabled():
            return await services.inbox_writer.store(batch, services.clock())
        with telemetry.span(names.INBOX_STORE, {names.ALERTS_RECEIVED: len(batch.alerts)}) as span:
            result = await services.inbox_writer.store(
                batch, services.clock(), traceparent=telemetry.traceparent()
            )
            span.set_attribute(names.ALERTS_STORED, result.stored)
            return result


async def _handle(request: Request, services: Services, source: AlertSource) -> JSONResponse:
    settings = services.settings
    await _authorize(request, services)
    try:
        body = await read_bounded(request, settings.max_body_bytes)
    except BodyTooLarge:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            detail=f"body is larger than {settings.max_body_bytes} bytes "
            "(BALLAST_MAX_BODY_BYTES); lower max_alerts in the sender or raise the limit",
        ) from None
    refused = _check_signature(request, services, source, body)
    if refused is not None:
        return refused
    try:
        data = parse_json_bytes(body)
    except PayloadError as err:
        services.metrics.alerts_received.labels(source.value, "rejected").inc()
        return JSONResponse({"detail": str(err), "field": err.field}, status_code=400)
    try:
        batch = parse_payload(source, data, now=services.clock())
    except PayloadError as err:
        services.metrics.alerts_received.labels(source.value, "rejected").inc()
        return JSONResponse({"detail": str(err), "field": err.field}, status_code=422)
    for change in batch.alterations:
        services.metrics.alert_values_altered.labels(change.reason.value).inc()

    try:
        result = await _store(services, batch)
    except Exception as err:
        if not is_unavailable(err):
            raise
        # The database is busy or away: ask the sender to retry (5xx), never drop (4xx).
        log.warning("could not store %s webhook, answering 503: %s", source.value, err)
        return JSONResponse(
            {"detail": "Ballast is overloaded or its database is unavailable; retry later"},
            status_code=503,
            headers={"Retry-After": RETRY_AFTER_SECONDS},
        )
    services.metrics.alerts_received.labels(source.value, "stored").inc(result.stored)
    services.metrics.alerts_received.labels(source.value, "duplicate").inc(result.duplicates)
    # The engine was woken by the writer as the rows committed (InboxWriter.when_stored).
    if batch.ignored is not None:
        services.metrics.alerts_received.labels(source.value, "ignored").inc()
    receipt = WebhookReceipt(
        received=result.received,
        stored=result.stored,
        duplicates=result.duplicates,
        truncated_alerts=batch.truncated_alerts,
        ignored=batch.ignored,
    )
    return JSONResponse(receipt.model_dump(exclude_none=True), status_code=200)


def _check_signature(
    request: Request, services: Services, source: AlertSource, body: bytes
) -> JSONResponse | None:
    """The sender's own signature, where it has one and its secret is set: a 403 if wrong.

    On top of the webhook token (which the sender sends as a custom header): the token says
    who may post, the signature that PagerDuty sent this very body.
    """
    secret = services.settings.pagerduty_webhook_secret
    if source is not AlertSource.PAGERDUTY or secret is None:
        return None
    check = check_signature(body, request.headers.get(SIGNATURE_HEADER), secret.get_secret_value())
    if check is SignatureCheck.MATCHED:
        return None
    count_failure(request, f"{check.value}_signature")
    detail = (
        f"no v1= signature in {SIGNATURE_HEADER}; BALLAST_PAGERDUTY_WEBHOOK_SECRET is set, so "
        "every delivery must be signed"
        if check is SignatureCheck.MISSING
        else f"no {SIGNATURE_HEADER} entry matches the body signed with "
        "BALLAST_PAGERDUTY_WEBHOOK_SECRET (the subscription's secret)"
    )
    return JSONResponse({"detail": detail, "field": ""}, status_code=403)


async def _authorize(request: Request, services: Services) -> None:
    """BALLAST_WEBHOOK_TOKEN as bearer or basic-auth password, or a principal with the
    ``automation`` role (a pipeline posting alerts over the API); closed by default."""
    await require_access(
        request,
        services.settings.webhook_token,
        role=Role.AUTOMATION,
        what="webhook",
        env="BALLAST_WEBHOOK_TOKEN",
        basic=True,
    )


async def alertmanager_webhook(request: Request) -> JSONResponse:
    """Prometheus Alertmanager webhook (payload version 4)."""
    return await _receive(request, AlertSource.ALERTMANAGER)


async def grafana_webhook(request: Request) -> JSONResponse:
    """Grafana unified alerting webhook contact point."""
    return await _receive(request, AlertSource.GRAFANA)


async def generic_webhook(request: Request) -> JSONResponse:
    """Ballast's documented generic JSON form (see docs/webhooks.md)."""
    return await _receive(request, AlertSource.GENERIC)


async def pagerduty_webhook(request: Request) -> JSONResponse:
    """PagerDuty V3 webhook subscription (incident events; X-PagerDuty-Signature checked)."""
    return await _receive(request, AlertSource.PAGERDUTY)


async def datadog_webhook(request: Request) -> JSONResponse:
    """Datadog Webhooks integration (the payload template in docs/webhooks.md; tags → labels)."""
    return await _receive(request, AlertSource.DATADOG)


async def opsgenie_webhook(request: Request) -> JSONResponse:
    """Opsgenie outgoing Webhook integration (Create fires, Close resolves)."""
    return await _receive(request, AlertSource.OPSGENIE)


def install(app: FastAPI) -> None:
    """Add the webhook endpoints to ``app`` (first, so they are matched first)."""
    for path, endpoint, methods in (
        ("/webhooks/alertmanager", alertmanager_webhook, ["POST"]),
        # Grafana's webhook contact point can be set to PUT; it sends the same body.
        ("/webhooks/grafana", grafana_webhook, ["POST", "PUT"]),
        ("/webhooks/generic", generic_webhook, ["POST"]),
        ("/webhooks/pagerduty", pagerduty_webhook, ["POST"]),
        ("/webhooks/datadog", datadog_webhook, ["POST"]),
        ("/webhooks/opsgenie", opsgenie_webhook, ["POST"]),
    ):
        for method in methods:  # one route per method: each its own OpenAPI operation
            add_direct_route(
                app,
                path,
                endpoint,
                methods=[method],
                response_model=WebhookReceipt,
                tags=["webhooks"],
            )
