"""Builds the Bolt ``AsyncApp``: the only place that constructs slack_bolt objects.

HTTP mode (``POST /slack/events``, signature-verified) or, with ``SLACK_APP_TOKEN``, Socket
Mode for workspaces without a public URL. The Web API base URL is ``BALLAST_SLACK_API_URL``
so the bot can run against a local Slack emulation.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.adapter.fastapi.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from slack_bolt.lazy_listener.async_internals import to_runnable_function
from slack_bolt.lazy_listener.asyncio_runner import AsyncioLazyListenerRunner
from slack_bolt.request.async_request import AsyncBoltRequest
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
    # Bolt starts lazy listeners with a bare ensure_future and keeps no reference: nothing
    # waits for them at shutdown, so one still posting to Slack was abandoned mid-request
    # with its aiohttp session open (a ResourceWarning at some later garbage collection).
    app._async_listener_runner.lazy_listener_runner = TrackedLazyListenerRunner(
        logging.getLogger("ballast.slack.bolt")
    )
    return app


class TrackedLazyListenerRunner(AsyncioLazyListenerRunner):
    """Bolt's asyncio runner, keeping each lazy listener's task until it is done."""

    def __init__(self, logger: logging.Logger) -> None:
        super().__init__(logger)
        self.tasks: set[asyncio.Future[None]] = set()

    def start(self, function: Callable[..., Awaitable[None]], request: AsyncBoltRequest) -> None:
        task = asyncio.ensure_future(
            to_runnable_function(internal_func=function, logger=self.logger, request=request)
        )
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def drain(self, grace: float = 10.0) -> None:
        """Let the running listeners finish (their Slack answers go out); cancel after grace."""
        if not self.tasks:
            return
        _, pending = await asyncio.wait(set(self.tasks), timeout=grace)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


async def drain_lazy_listeners(app: AsyncApp, grace: float = 10.0) -> None:
    """At shutdown: wait for the lazy listeners still running (see TrackedLazyListenerRunner)."""
    runner = app._async_listener_runner.lazy_listener_runner
    if isinstance(runner, TrackedLazyListenerRunner):
        await runner.drain(grace)


def http_handler(app: AsyncApp) -> AsyncSlackRequestHandler:
    return AsyncSlackRequestHandler(app)


async def start_socket_mode(app: AsyncApp, app_token: str) -> Any:
    """Connect over Socket Mode; returns the handler so the caller can close it."""
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

    handler = AsyncSocketModeHandler(app, app_token)
    await handler.connect_async()  # type: ignore[no-untyped-call]
    log.info("connected to Slack over Socket Mode")
    return handler
