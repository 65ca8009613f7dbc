"""``ballast serve``: the bot, as one uvicorn process."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bot.cli.output import fail
from bot.cli.store import DatabaseUrlOption, load_settings

ENVIRONMENT = """\
Other settings come from the environment: BALLAST_WEBHOOK_TOKEN, BALLAST_API_TOKEN,
BALLAST_OFREP_TOKEN, BALLAST_METRICS_TOKEN, SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET,
SLACK_APP_TOKEN (each also as NAME_FILE=/path: the file's contents), BALLAST_SLACK_CHANNEL,
BALLAST_SLACK_API_URL, BALLAST_MAX_BODY_BYTES, BALLAST_LOG_FORMAT (text|json),
BALLAST_LOG_LEVEL, BALLAST_DRY_RUN, BALLAST_SHUTDOWN_DELAY (seconds serving unready after
SIGTERM, 2), BALLAST_SHUTDOWN_GRACE (seconds for work in flight, 20), BALLAST_PUBLIC_URL
(deep links of the web console at /ui/), BALLAST_WEB_SESSION_SECRET (signs its sessions).
Traces: OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) exports Ballast's
spans over OTLP/HTTP, with OTEL_SERVICE_NAME (ballast), OTEL_RESOURCE_ATTRIBUTES and the other
standard OTEL_* variables; unset, nothing is traced (docs/observability.md).
An unknown BALLAST_* variable stops the start, naming the closest known one."""


def serve(
    host: Annotated[
        str, typer.Option(metavar="ADDRESS", envvar="BALLAST_HOST", help="Address to listen on.")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(metavar="PORT", envvar="BALLAST_PORT", help="Port to listen on.")
    ] = 8080,
    database_url: DatabaseUrlOption = None,
    runbooks: Annotated[
        Path | None,
        typer.Option(
            metavar="PATH",
            envvar="BALLAST_RUNBOOKS",
            show_default=False,
            help="Runbook folder or file (default: runbooks).",
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE", envvar="BALLAST_CONFIG", show_default=False, help="A ballast.yaml."
        ),
    ] = None,
    insecure_allow_anonymous: Annotated[
        bool,
        typer.Option(
            "--insecure-allow-anonymous",
            envvar="BALLAST_INSECURE_ALLOW_ANONYMOUS",
            help="Open webhooks, OFREP and /metrics whose token is unset to anyone (never the "
            "API), and serve a network address with no way in (said in the banner and in "
            "/metrics). For throwaway demos only.",
        ),
    ] = False,
) -> None:
    """Run Ballast: webhooks, JSON API, web console (/ui/), Slack and metrics."""
    import logging
    import os

    from bot.app import build_services, create_app
    from bot.auth.exposure import anonymous_endpoints, exposure_problems
    from bot.cli.banner import banner_lines
    from bot.errors import ConfigError, RunbookError
    from bot.logs import configure_logging
    from bot.runtime import graceful
    from bot.runtime.graceful import ShutdownTimes
    from bot.telemetry.setup import configure as configure_tracing

    try:
        settings = load_settings(
            database_url,
            runbooks=runbooks,
            config=config,
            insecure_allow_anonymous=insecure_allow_anonymous or None,
        )
    except ConfigError as err:
        fail(f"not starting: {err}", code=2)
    configure_logging(settings.log_format, settings.log_level)
    # OpenTelemetry: on only when OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT is set (the SDK's own
    # variables), before anything is built: the HTTP client is traced only then.
    tracing = configure_tracing(os.environ)
    serve_lock = None
    if settings.is_sqlite:
        from bot.store.database import sqlite_path
        from bot.store.serve_lock import hold_sqlite

        try:
            serve_lock = hold_sqlite(sqlite_path(settings.async_database_url))
        except ConfigError as err:
            fail(f"not starting: {err}")
    try:
        services = build_services(settings)
    except RunbookError as err:
        fail(f"not starting: the runbook catalog is invalid.\n{err}")
    except ConfigError as err:
        fail(f"not starting: {err}")
    problems = exposure_problems(
        host,
        webhook_token_set=settings.webhook_token is not None,
        api_configured=services.auth.configured,
    )
    if problems and not insecure_allow_anonymous:
        fail(
            f"not starting: {host} is reachable from other machines and\n  - "
            + "\n  - ".join(problems)
            + "\nListen on 127.0.0.1, or (throwaway demos only) pass --insecure-allow-anonymous.",
            code=2,
        )
    insecure = problems + anonymous_endpoints(settings)
    services.metrics.insecure_allow_anonymous.set(1 if insecure else 0)
    lines = banner_lines(services, host, port, insecure=insecure, tracing=tracing)
    logging.getLogger("bot.serve").info("%s", "\n".join(lines))
    app = create_app(services, handle_sighup=True)
    times = ShutdownTimes(settings.shutdown_delay, settings.shutdown_grace)
    try:
        graceful.run(app, host, port, times, services.start_draining)
    finally:
        if tracing is not None:
            tracing.shutdown()  # exports the spans still queued
    if serve_lock is not None:
        serve_lock.release()
