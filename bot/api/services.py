"""The long-lived objects a request handler may use, built once by ``bot.app``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
from fastapi import Request

from actions.registry import ActionRegistry
from bot.auth.authenticator import Authenticator
from bot.changelog.log import ChangeLog
from bot.changelog.ranking import DEFAULT_WINDOW
from bot.config import RunbooksConfig, SlackConfig
from bot.controls.store import BuiltinControlStore, ControlHistoryLog
from bot.execution.auto import AutoMitigator
from bot.execution.context import ContextFactory
from bot.execution.executor import MitigationExecutor
from bot.gates.check import ReleaseGates
from bot.gitsync.syncer import RunbookSyncer
from bot.incidents.changes import ChangeBus
from bot.incidents.engine import IncidentEngine
from bot.incidents.escalation import Escalator
from bot.incidents.traces import TraceLinks
from bot.metrics import Metrics
from bot.postmortem.service import PostmortemService
from bot.runbooks.catalog import LiveCatalog
from bot.runtime.stop_request import StopRequest
from bot.scheduling.timers import TimerService
from bot.settings import Settings
from bot.slack.announcer import SlackAnnouncer
from bot.slack.console import ConsoleAnnouncer
from bot.slack.delivery import SlackDelivery
from bot.slack.outbox import SlackOutbox
from bot.slack.responders import Responders
from bot.store.database import Database
from bot.store.inbox import PendingCount
from bot.store.inbox_retention import InboxPruner
from bot.store.inbox_writer import InboxWriter
from bot.store.notifications import ChangeFeed
from bot.verification.exemplars import ExemplarRecorder
from bot.verification.scorecard import ScorecardRecorder


@dataclass(slots=True)
class Services:
    settings: Settings
    db: Database
    catalog: LiveCatalog
    engine: IncidentEngine
    inbox_writer: InboxWriter
    metrics: Metrics
    registry: ActionRegistry
    clock: Callable[[], datetime]
    controls: BuiltinControlStore
    history: ControlHistoryLog
    contexts: ContextFactory
    executor: MitigationExecutor
    auto: AutoMitigator
    bus: ChangeBus
    timers: TimerService
    http: httpx.AsyncClient
    escalator: Escalator
    outbox: SlackOutbox
    responders: Responders
    auth: Authenticator
    changes: ChangeLog
    change_window: timedelta = DEFAULT_WINDOW
    gates: ReleaseGates | None = None
    delivery: SlackDelivery | None = None
    # The incident's message in Slack, or without Slack the line printed on the console.
    announcer: SlackAnnouncer | ConsoleAnnouncer | None = None
    feed: ChangeFeed | None = None  # notifications from other replicas (PostgreSQL)
    postmortems: PostmortemService | None = None
    scorecards: ScorecardRecorder | None = None  # snapshots at open, verification, resolve
    exemplars: ExemplarRecorder | None = None  # example traces of the alert's PromQL
    slack_config: SlackConfig = field(default_factory=SlackConfig)
    traces: TraceLinks = field(default_factory=TraceLinks)  # ballast.yaml traces:
    syncer: RunbookSyncer | None = None  # runbooks.git: keeps the catalog at the ref's commit
    runbooks_config: RunbooksConfig = field(default_factory=RunbooksConfig)
    pruner: InboxPruner | None = None  # inbox.retention: deletes expired alert states
    # /metrics' count of the unprocessed inbox, kept while a large backlog makes it costly.
    pending: PendingCount = field(default_factory=PendingCount)
    slack_app: Any = None  # slack_bolt's AsyncApp, when Slack is configured
    slack_handler: Any = None  # its HTTP handler (None in Socket Mode)
    store_timeout: float = 5.0
    ready: bool = field(default=False)
    draining: bool = field(default=False)  # SIGTERM came: unready, taking no new work
    # Asked for with the draining: a start-up still under way ends at once (bot/app.py).
    stop: StopRequest = field(default_factory=StopRequest)

    def start_draining(self) -> None:
        """Readiness false first (bot/runtime/graceful.py); the shutdown follows. Called from
        the signal handler too: sets flags and asks for the stop, nothing else."""
        self.draining = True
        self.ready = False
        self.stop.request()


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services
