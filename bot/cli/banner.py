"""The one start-up banner of ``ballast serve``: where the server stands, in one log record.

It answers what a new user (and an operator reading logs) asks first: where is it listening,
which database (never a password), which runbooks, is Slack real, what is open to anyone.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy.engine import make_url

import bot
from bot.api.services import Services
from bot.settings import Settings
from bot.telemetry.setup import Tracing


def describe_database(url: str) -> str:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ":memory:"
        if database == ":memory:":
            return "SQLite in memory (nothing survives a restart)"
        return f"SQLite {Path(database).expanduser().resolve()}"
    host = parsed.host or "localhost"
    port = parsed.port or 5432
    user = f" as {parsed.username}" if parsed.username else ""
    return f"PostgreSQL {host}:{port}/{parsed.database or ''}{user}"


def api_ways_in(services: Services) -> str:
    """How API callers authenticate (docs/security.md), or that nobody can."""
    auth = services.auth
    ways = []
    if auth.config.tokens:
        ways.append(f"{len(auth.config.tokens)} named token(s)")
    if auth.api_token is not None:
        ways.append("BALLAST_API_TOKEN (service 'api')")
    if auth.oidc is not None:
        ways.append("OIDC bearer tokens")
    if auth.proxy is not None:
        ways.append("trusted proxy header")
    if not ways:
        return f"closed to everyone: {auth.methods()}"
    return ", ".join(ways)


def _secrets(settings: Settings) -> str | None:
    names = [
        name
        for name, value in (
            ("BALLAST_OFREP_TOKEN", settings.ofrep_token),
            ("BALLAST_METRICS_TOKEN", settings.metrics_token),
        )
        if value is not None
    ]
    return ", ".join(names) or None


def _ways(secret: str | None, role: str, services: Services) -> str:
    """How a caller of an endpoint outside the API gets in (its secret, or a principal)."""
    ways = [secret] if secret else []
    if services.auth.configured:
        ways.append(f"a principal with the {role} role")
    if not ways:
        return "closed to everyone (ballast tokens create NAME --role " + role + ")"
    return " or ".join(ways)


def banner_lines(
    services: Services,
    host: str,
    port: int,
    *,
    insecure: list[str] | None = None,
    tracing: Tracing | None = None,
) -> list[str]:
    """The banner, one fact per line; ``insecure``: what --insecure-allow-anonymous let by;
    ``tracing``: the OpenTelemetry SDK, when the OTEL_* environment turned it on."""
    settings = services.settings
    listen = f"http://{host}:{port}"
    if host in ("127.0.0.1", "localhost", "::1"):
        listen += " (this machine only; --host 0.0.0.0 or BALLAST_HOST to accept others)"
    if services.delivery is None:
        slack = "console: no SLACK_BOT_TOKEN, messages are printed here as [slack: would post]"
    elif settings.slack_app_token is not None:
        slack = "Socket Mode (SLACK_APP_TOKEN)"
    else:
        signed = "signed" if settings.slack_signing_secret else "UNSIGNED: set SLACK_SIGNING_SECRET"
        slack = f"Events API at POST /slack/events ({signed})"
    open_to_all = ["/healthz", "/readyz"]
    if settings.insecure_allow_anonymous:
        if settings.webhook_token is None:
            open_to_all.append("POST /webhooks/* (BALLAST_WEBHOOK_TOKEN unset)")
        if settings.ofrep_token is None:
            open_to_all.append("OFREP /ofrep/v1/* (BALLAST_OFREP_TOKEN unset)")
        if settings.metrics_token is None:
            open_to_all.append("/metrics (BALLAST_METRICS_TOKEN unset)")
    webhooks = "BALLAST_WEBHOOK_TOKEN" if settings.webhook_token is not None else None
    writes = api_ways_in(services)
    postmortems = (
        str(services.postmortems.folder.expanduser().resolve())
        if services.postmortems is not None
        else "(off)"
    )
    config = str(settings.config.resolve()) if settings.config else "none (BALLAST_CONFIG unset)"
    runbooks = len(services.catalog.current.runbooks)
    lines = [
        f"Ballast {bot.__version__} starting",
        f"  listen           {listen}",
        f"  database         {describe_database(settings.async_database_url)}",
        f"  runbooks         {runbooks} from {settings.runbooks.resolve()}",
        f"  slack            {slack}",
        f"  API              {writes}",
        f"  webhooks         {_ways(webhooks, 'automation', services)}",
        f"  OFREP/metrics    {_ways(_secrets(settings), 'reader', services)}",
        f"  unauthenticated  {', '.join(open_to_all)}",
        f"  postmortems      {postmortems}",
        f"  config           {config}",
        f"  traces           {describe_tracing(tracing)}",
    ]
    for problem in insecure or []:
        lines.append(f"  INSECURE         --insecure-allow-anonymous: {problem}")
    if settings.dry_run:
        lines.append("  dry run          on (BALLAST_DRY_RUN): mitigations change nothing")
    return lines


def describe_tracing(tracing: Tracing | None) -> str:
    """Where Ballast's spans go, without any credentials the endpoint URL may carry."""
    if tracing is None:
        return "off (OTEL_EXPORTER_OTLP_ENDPOINT unset)"
    parts = urlsplit(tracing.endpoint)
    where = f"{parts.scheme}://{parts.hostname or ''}"
    if parts.port:
        where += f":{parts.port}"
    return f"OTLP/HTTP to {where}{parts.path} as service {tracing.service_name!r}"
