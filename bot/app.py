"""Wires Ballast together. The only place that builds long-lived objects.

``create_app(settings)`` returns the ASGI app; its lifespan migrates the database, loads the
runbook catalog (refusing to start on an invalid one: there is no last good catalog yet),
starts the incident engine, and stops everything in reverse on shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

from fastapi import FastAPI

import bot
from actions.registry import default_registry
from bot.api import health, incidents, runbooks, webhooks
from bot.api.runbooks import reload_catalog
from bot.api.services import Services
from bot.config import BallastConfig, load_config
from bot.errors import RunbookError
from bot.incidents.engine import IncidentEngine
from bot.matching.catalog import LiveCatalog
from bot.matching.loader import load_catalog
from bot.metrics import Metrics
from bot.settings import Settings
from bot.slack.console import ConsoleAnnouncer
from bot.store.database import Database

log = logging.getLogger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


def build_services(
    settings: Settings,
    config: BallastConfig | None = None,
    *,
    clock: Callable[[], datetime] = utc_now,
    db: Database | None = None,
) -> Services:
    """Build everything without starting anything (no I/O but reading the runbooks)."""
    config = config or load_config(settings.config)
    if config.runbooks is not None:
        settings = settings.model_copy(update={"runbooks": config.runbooks})
    registry = default_registry()
    load = load_catalog([settings.runbooks], registry)
    for diagnostic in load.diagnostics:
        (log.error if diagnostic.severity == "error" else log.warning)("%s", diagnostic)
    if load.catalog is None:
        raise RunbookError(load.diagnostics)
    catalog = LiveCatalog(load.catalog)
    db = db or Database(settings.async_database_url)
    metrics = Metrics()
    listeners = [] if settings.slack_bot_token else [ConsoleAnnouncer(db)]
    engine = IncidentEngine(
        db,
        catalog,
        metrics,
        clock=clock,
        listeners=listeners,
        reopen_window=config.incidents.reopen_window,
    )
    return Services(
        settings=settings,
        db=db,
        catalog=catalog,
        engine=engine,
        metrics=metrics,
        registry=registry,
        clock=clock,
    )


def create_app(services: Services, *, handle_sighup: bool = False) -> FastAPI:
    """The ASGI app. ``handle_sighup`` reloads runbooks on SIGHUP (the server process only)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await services.db.migrate()
        services.db.start_housekeeping()
        worker = asyncio.create_task(services.engine.run(), name="incident-engine")
        if handle_sighup:
            reloads: set[asyncio.Task[None]] = set()

            def on_sighup() -> None:
                task = asyncio.get_running_loop().create_task(_reload_and_log(services))
                reloads.add(task)  # keep a reference until it is done
                task.add_done_callback(reloads.discard)

            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, on_sighup)
        services.ready = True
        log.info(
            "Ballast %s ready: %d runbooks from %s, database %s",
            bot.__version__,
            len(services.catalog.current.runbooks),
            services.settings.runbooks,
            services.db.engine.url.render_as_string(hide_password=True),
        )
        try:
            yield
        finally:
            services.ready = False
            await services.engine.stop(worker)
            await services.db.close()

    app = FastAPI(
        title="Ballast",
        version=bot.__version__,
        description="Runbook automation and incident response for AI systems in production.",
        lifespan=lifespan,
    )
    app.state.services = services
    for module in (webhooks, incidents, runbooks, health):
        app.include_router(module.router)
    return app


async def _reload_and_log(services: Services) -> None:
    diagnostics = await reload_catalog(services)
    errors = [d for d in diagnostics if d.severity == "error"]
    if errors:
        log.error(
            "SIGHUP: runbook reload refused, keeping catalog version %d:\n%s",
            services.catalog.version,
            "\n".join(str(d) for d in errors),
        )
    else:
        log.info(
            "SIGHUP: runbooks reloaded, catalog version %d (%d runbooks)",
            services.catalog.version,
            len(services.catalog.current.runbooks),
        )
