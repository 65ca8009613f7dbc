"""What ``ballast serve``'s banner says for each way it can be set up, built in this process
(the real server's banner, once, on a running process: tests/e2e/test_banner.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import TracerProvider

from bot.app import build_services
from bot.cli.banner import banner_lines, describe_tracing
from bot.config import BallastConfig
from bot.settings import Settings
from bot.telemetry.setup import Tracing


def _facts(tmp_path: Path, runbooks_dir: Path, **settings: Any) -> tuple[dict[str, str], list[str]]:
    services = build_services(
        Settings(
            database_url=f"sqlite:///{tmp_path / 'ballast.db'}", runbooks=runbooks_dir, **settings
        ),
        BallastConfig(),
        environ={},
    )
    lines = banner_lines(services, "0.0.0.0", 8080, insecure=["the API is open"])
    facts = dict(
        line.split(None, 1)
        for line in lines[1:]
        if not line.lstrip().startswith(("INSECURE", "dry run"))
    )
    return facts, lines


def test_nothing_configured_everything_is_closed_and_said_so(
    tmp_path: Path, runbooks_dir: Path
) -> None:
    facts, lines = _facts(tmp_path, runbooks_dir)
    assert lines[0].endswith(" starting")
    assert facts["listen"] == "http://0.0.0.0:8080"  # no "this machine only" note
    assert facts["API"].startswith("closed to everyone: ")
    assert facts["webhooks"] == "closed to everyone (ballast tokens create NAME --role automation)"
    assert facts["OFREP/metrics"] == "closed to everyone (ballast tokens create NAME --role reader)"
    assert facts["unauthenticated"] == "/healthz, /readyz"
    assert facts["slack"].startswith("console: no SLACK_BOT_TOKEN")
    assert facts["config"] == "none (BALLAST_CONFIG unset)"
    assert facts["database"] == f"SQLite {(tmp_path / 'ballast.db').resolve()}"
    assert "  INSECURE         --insecure-allow-anonymous: the API is open" in lines
    assert not any(line.lstrip().startswith("dry run") for line in lines)


def test_secrets_named_never_shown_and_anonymous_endpoints_listed(
    tmp_path: Path, runbooks_dir: Path
) -> None:
    facts, lines = _facts(
        tmp_path,
        runbooks_dir,
        api_token="api-secret-value",
        ofrep_token="ofrep-secret-value",
        insecure_allow_anonymous=True,
        dry_run=True,
    )
    assert facts["API"] == "BALLAST_API_TOKEN (service 'api')"
    # The API token is a principal: the reader role is a way in too.
    assert facts["OFREP/metrics"] == "BALLAST_OFREP_TOKEN or a principal with the reader role"
    assert facts["unauthenticated"] == (
        "/healthz, /readyz, POST /webhooks/* (BALLAST_WEBHOOK_TOKEN unset), "
        "/metrics (BALLAST_METRICS_TOKEN unset)"
    )
    assert "  dry run          on (BALLAST_DRY_RUN): mitigations change nothing" in lines
    assert not any("secret-value" in line for line in lines)


def test_slack_is_named_by_how_it_is_reached(tmp_path: Path, runbooks_dir: Path) -> None:
    """(Slack over HTTP without a signing secret does not start: build_services refuses it.)"""
    slack = {"slack_bot_token": "xoxb-test", "slack_api_url": "http://127.0.0.1:9/api/"}
    signed, _ = _facts(tmp_path, runbooks_dir, slack_signing_secret="s3cret", **slack)
    assert signed["slack"] == "Events API at POST /slack/events (signed)"
    socket, _ = _facts(tmp_path, runbooks_dir, slack_app_token="xapp-test", **slack)
    assert socket["slack"] == "Socket Mode (SLACK_APP_TOKEN)"


def test_traces_are_described_without_the_endpoint_s_credentials() -> None:
    assert describe_tracing(None) == "off (OTEL_EXPORTER_OTLP_ENDPOINT unset)"
    tracing = Tracing(
        TracerProvider(), "https://user:hunter2@collector.internal:4318/v1/traces?k=v", "ballast"
    )
    shown = describe_tracing(tracing)
    assert shown == "OTLP/HTTP to https://collector.internal:4318/v1/traces as service 'ballast'"
    assert "hunter2" not in shown
