"""The long-lived objects a request handler may use, built once by ``bot.app``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from fastapi import Request

from actions.registry import ActionRegistry
from bot.incidents.engine import IncidentEngine
from bot.matching.catalog import LiveCatalog
from bot.metrics import Metrics
from bot.settings import Settings
from bot.store.database import Database


@dataclass(slots=True)
class Services:
    settings: Settings
    db: Database
    catalog: LiveCatalog
    engine: IncidentEngine
    metrics: Metrics
    registry: ActionRegistry
    clock: Callable[[], datetime]
    store_timeout: float = 5.0
    ready: bool = field(default=False)


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services
