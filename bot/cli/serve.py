"""``ballast serve``: the bot, as one uvicorn process."""

from __future__ import annotations

from typing import Annotated

import typer

from bot.cli.output import fail


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
) -> None:
    """Run Ballast: webhooks, JSON API and metrics (SQLite under ./data unless configured)."""
    import uvicorn

    from bot.app import build_services, create_app
    from bot.errors import ConfigError, RunbookError
    from bot.logs import configure_logging
    from bot.settings import Settings

    settings = Settings()
    configure_logging(settings.log_format, settings.log_level)
    try:
        services = build_services(settings)
    except RunbookError as err:
        fail(f"not starting: the runbook catalog is invalid.\n{err}")
    except ConfigError as err:
        fail(f"not starting: {err}")
    app = create_app(services, handle_sighup=True)
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        proxy_headers=False,
        timeout_graceful_shutdown=10,
    )
