"""Builds the Bolt ``AsyncApp``: the only place that constructs slack_bolt objects.

HTTP mode (``POST /slack/events``, signature-verified) or, with ``SLACK_APP_TOKEN``, Socket
Mode for workspaces without a public URL. The Web API base URL is ``BALLAST_SLACK_API_URL``
so the bot can run against a local Slack emulation.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.adapter.fastapi.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import ConfigError
from bot.settings import Settings
from bot.slack import listeners

log = logging.getLogger(__name__)


def build_slack_app(settings: Settings, services: listeners.SlackServices) -> AsyncApp:
    if settings.slack_bot_token is None:
        raise ConfigError("Slack needs SLACK_BOT_TOKEN (xoxb-...)")
    if settings.slack_signing_secret is None and settings.slack_app_token is None:
        raise ConfigError(
            "Slack over HTTP needs SLACK_SIGNING_SECRET (or set SLACK_APP_TOKEN for Socket Mode)"
        )
    token = settings.slack_bot_token.get_secret_value()
    client = AsyncWebClient(
        token=token, base_url=settings.slack_api_url.rstrip("/") + "/", retry_handlers=[]
    )
    app = AsyncApp(
        client=client,
        signing_secret=(
            settings.slack_signing_secret.get_secret_value()
            if settings.slack_signing_secret
            else None
        ),
        # Ack-only listeners answer Slack; the work runs afterwards as lazy listeners (see
        # bot.slack.listeners), so nothing is sent to Slack before the 2xx.
        process_before_response=True,
        logger=logging.getLogger("ballast.slack.bolt"),
    )
    listeners.register(app, services)
    return app


def http_handler(app: AsyncApp) -> AsyncSlackRequestHandler:
    return AsyncSlackRequestHandler(app)


async def start_socket_mode(app: AsyncApp, app_token: str) -> Any:
    """Connect over Socket Mode; returns the handler so the caller can close it."""
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

    handler = AsyncSocketModeHandler(app, app_token)
    await handler.connect_async()  # type: ignore[no-untyped-call]
    log.info("connected to Slack over Socket Mode")
    return handler
