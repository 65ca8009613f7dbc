"""Wires Ballast together. The only place that builds long-lived objects.

``create_app(settings)`` returns the ASGI app; its lifespan migrates the database, loads the
runbook catalog (refusing to start on an invalid one: there is no last good catalog yet),
starts the incident engine, and stops everything in reverse on shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, MutableMapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy.exc import SQLAlchemyError

import bot
from actions.backends.base import ControlBackend
from actions.backends.flagd import FlagdFileBackend
from actions.backends.unleash import UnleashBackend
from actions.clients.http_policy import AllowlistHttpPolicy
from actions.clients.paging import HttpPager
from actions.context import Messenger
from actions.registry import ActionRegistry, default_registry
from bot import telemetry
from bot.api import (
    alerts,
    changes,
    controls,
    gates,
    git_webhook,
    health,
    incidents,
    mitigations,
    ofrep,
    openapi,
    postmortems,
    runbooks,
    slack,
    webhooks,
)
from bot.api.direct import DirectApp
from bot.api.errors import install_error_handlers
from bot.api.openapi_document import install_openapi
from bot.api.runbooks import reload_catalog
from bot.api.services import Services
from bot.auth.authenticator import Authenticator
from bot.auth.oidc import OidcVerifier
from bot.auth.people import PersonDirectory
from bot.auth.proxy import TrustedProxy
from bot.changelog.log import ChangeLog
from bot.config import (
    BallastConfig,
    FlagdBackendConfig,
    GitSourceConfig,
    RunbooksConfig,
    UnleashBackendConfig,
    load_config,
)
from bot.controls.recording import RecordingBackend
from bot.controls.store import BuiltinControlStore, ControlHistoryLog
from bot.errors import Diagnostic, RunbookError
from bot.execution.auto import AutoMitigator
from bot.execution.context import ConsoleMessenger, ContextFactory, NoPager
from bot.execution.executor import MitigationExecutor
from bot.execution.leases import LeaseTerms
from bot.execution.policy import OwnerDirectory, StaticDirectory
from bot.execution.retrying import RetryPolicy
from bot.gates.check import ReleaseGates
from bot.gitsync.syncer import RefusedCommit, RunbookSyncer
from bot.incidents.actors import SYSTEM
from bot.incidents.changes import ChangeBus
from bot.incidents.engine import IncidentEngine
from bot.incidents.escalation import Escalator
from bot.incidents.reminders import Reminder
from bot.incidents.traces import TraceLinks
from bot.metrics import Metrics
from bot.postmortem.service import PostmortemService
from bot.runbooks.catalog import LiveCatalog
from bot.runbooks.loader import load_catalog
from bot.runbooks.snapshot import Catalog
from bot.runtime.gc_tuning import freeze_startup_heap
from bot.runtime.stop_request import Stopped
from bot.runtime.worker import WorkerLoop
from bot.scheduling.timers import TimerKind, TimerService
from bot.settings import Settings
from bot.slack.announcer import SlackAnnouncer
from bot.slack.bolt_app import (
    build_slack_app,
    drain_lazy_listeners,
    http_handler,
    start_socket_mode,
)
from bot.slack.budgets import SlackBudgets
from bot.slack.console import ConsoleAnnouncer
from bot.slack.delivery import SlackDelivery, slack_client_factory
from bot.slack.directory import SlackDirectory
from bot.slack.email_lookup import slack_email_lookup
from bot.slack.gate_requests import SlackGateRequests
from bot.slack.messenger import SlackMessenger
from bot.slack.outbox import SlackOutbox
from bot.slack.postmortem_thread import PostmortemThread
from bot.slack.responders import Responders
from bot.store.database import Database
from bot.store.inbox_retention import InboxPruner
from bot.store.inbox_writer import InboxWriter
from bot.store.notifications import ChangeFeed, Channel
from bot.store.tables import Timer
from bot.store.transient import is_transient, reason
from bot.telemetry.http import TracingTransport
from bot.verification.exemplars import ExemplarRecorder
from bot.verification.prometheus import PrometheusClient
from bot.verification.scorecard import ScorecardRecorder
from bot.verification.verifier import ClientFor, Verifier
from bot.web.install import install as install_web

log = logging.getLogger(__name__)

UNTRACED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def _untraced(scope: MutableMapping[str, Any]) -> bool:
    """Requests FastAPI makes no span for: health probes and metric scrapes."""
    return scope.get("path") in UNTRACED_PATHS


def utc_now() -> datetime:
    return datetime.now(UTC)


def build_services(
    settings: Settings,
    config: BallastConfig | None = None,
    *,
    clock: Callable[[], datetime] = utc_now,
    db: Database | None = None,
    http_transport: httpx.AsyncBaseTransport | None = None,
    environ: Mapping[str, str] | None = None,
    retry_backoff: float | None = None,
) -> Services:
    """Build everything without starting anything (no I/O but reading the runbooks)."""
    config = config or load_config(settings.config)
    environ = os.environ if environ is None else environ
    runbooks_config = config.runbooks or RunbooksConfig()
    if runbooks_config.path is not None:
        settings = settings.model_copy(update={"runbooks": runbooks_config.path})
    registry = default_registry()
    metrics = Metrics()
    syncer: RunbookSyncer | None = None
    if runbooks_config.git is None:
        catalog = LiveCatalog(_load_folder(settings, registry, config), config.panel_names())
    else:
        # The first catalog comes from the last good checkout if there is one (the remote may
        # be down); otherwise from the first sync, before the server says it is ready.
        catalog = LiveCatalog(panels=config.panel_names())
        token = settings.git_token.get_secret_value() if settings.git_token else None
        syncer = RunbookSyncer(
            runbooks_config.git,
            catalog,
            registry,
            metrics,
            token=token,
            clock=clock,
            web_url=runbooks_config.web_url,
        )
        syncer.restore()
    db = db or Database(settings.async_database_url)
    if telemetry.enabled():
        # Every outgoing call (actions, backends, paging, Prometheus) in a CLIENT span that
        # sends its traceparent on.
        http_transport = TracingTransport(http_transport or httpx.AsyncHTTPTransport())
    http = httpx.AsyncClient(transport=http_transport, follow_redirects=False)

    feed = ChangeFeed(db)
    controls = BuiltinControlStore(db, clock, feed=feed)
    history = controls.history_log
    delivery: SlackDelivery | None = None
    if settings.slack_bot_token is not None:
        delivery = SlackDelivery(db, slack_client_factory(settings), clock, SlackBudgets(clock))
    outbox = SlackOutbox(clock=clock, on_commit=delivery.wake if delivery else None)
    if delivery is not None:
        feed.subscribe(Channel.SLACK_OUTBOX, delivery.wake)  # queued by another replica
    if syncer is not None:
        feed.subscribe(Channel.RUNBOOKS_PUSHED, syncer.wake)  # a push webhook reached another
    messenger: Messenger = ConsoleMessenger()
    if delivery is not None:
        messenger = SlackMessenger(
            db,
            outbox,
            fallback_channel=settings.slack_channel,
            group_ids=config.slack.usergroup_ids,
            wake=delivery.wake,
        )
    contexts = ContextFactory(
        backends=_backends(config, controls, history, http, environ),
        history=history,
        http=http,
        messenger=messenger,
        pager=HttpPager(config.paging, http, environ) if config.paging else NoPager(),
        http_policy=AllowlistHttpPolicy(
            config.http.allowed_hosts, environ, allowed_secrets=config.http.allowed_secrets
        ),
    )
    retry = RetryPolicy(
        deadline=config.execution.retry_deadline, max_attempts=config.execution.max_attempts
    )
    if retry_backoff is not None:
        retry = RetryPolicy(retry.deadline, retry.max_attempts, retry_backoff, retry_backoff)
    bus = ChangeBus()
    directory: OwnerDirectory = StaticDirectory(config.teams)
    if delivery is not None:
        directory = SlackDirectory(
            slack_client_factory(settings)(),
            config.slack.usergroup_ids,
            StaticDirectory(config.teams),
        )
    executor = MitigationExecutor(
        db,
        catalog,
        registry,
        contexts,
        directory,
        clock=clock,
        retry=retry,
        dry_run=settings.dry_run or config.execution.dry_run,
        bus=bus,
        remind_every=config.incidents.remind_every,
        lease=LeaseTerms(length=config.execution.lease),
    )
    traces = TraceLinks(config.traces)
    auto = AutoMitigator(executor)
    bus.subscribe(auto)
    announcer: SlackAnnouncer | ConsoleAnnouncer
    if delivery is None:
        announcer = ConsoleAnnouncer(db)
    else:
        announcer = SlackAnnouncer(
            db,
            catalog,
            registry,
            outbox,
            config.slack,
            fallback_channel=settings.slack_channel,
            on_enqueued=delivery.wake,
            change_window=config.changes.window,
            traces=traces,
            clock=clock,
            planner=executor.plan_now,
        )
    bus.subscribe(announcer)
    if syncer is not None and runbooks_config.git is not None:
        syncer.on_refused = _refusal_reporter(runbooks_config.git, messenger)
    prometheus = prometheus_clients(config, http, environ)
    # After the announcer (its snapshot updates a message already posted), before the
    # postmortem (whose draft shows the snapshot taken at resolve).
    scorecard = ScorecardRecorder(db, config, prometheus, bus, clock=clock, catalog=catalog)
    bus.subscribe(scorecard)
    # Example traces (exemplars of the alert's PromQL), for services whose traces: want them.
    exemplars = ExemplarRecorder(db, traces, prometheus, bus, clock=clock) if traces else None
    if exemplars is not None:
        bus.subscribe(exemplars)
    postmortem = PostmortemService(
        db,
        catalog,
        registry,
        config.postmortem,
        runbooks_root=settings.runbooks if syncer is None else _live_folder(catalog, syncer),
        clock=clock,
        http=http,
        environ=environ,
        publisher=PostmortemThread(outbox) if delivery is not None else None,
        change_window=config.changes.window,
        traces=traces,
    )
    bus.subscribe(postmortem)
    inbox_writer = InboxWriter(db)
    engine = IncidentEngine(
        db,
        catalog,
        metrics,
        clock=clock,
        listeners=[bus],
        opening=[auto],
        reopen_window=config.incidents.reopen_window,
        pacing=inbox_writer.pacing,
    )
    inbox_writer.when_stored(engine.wake)

    async def auto_undo(timer: Timer) -> str:
        result = await executor.undo(
            int(timer.incident_id or 0),
            str(timer.payload["mitigation_id"]),
            SYSTEM,
            reason="undo_after elapsed",
        )
        return f"{result.state}: {result.message}"

    escalator = Escalator(db, catalog, contexts.messenger, contexts.pager, clock=clock)
    reminder = Reminder(db, bus, clock=clock, every=config.incidents.remind_every)
    verifier = Verifier(
        db, catalog, prometheus, executor, escalator, bus, clock=clock, scorecard=scorecard
    )
    handlers = {
        TimerKind.AUTO_UNDO: auto_undo,
        TimerKind.ESCALATE: escalator.fire,
        TimerKind.REMIND: reminder.fire,
        TimerKind.VERIFY: verifier.fire,
    }
    timers = TimerService(db, handlers, clock=clock)
    services = Services(
        settings=settings,
        db=db,
        catalog=catalog,
        engine=engine,
        inbox_writer=inbox_writer,
        metrics=metrics,
        registry=registry,
        clock=clock,
        controls=controls,
        history=history,
        contexts=contexts,
        executor=executor,
        auto=auto,
        announcer=announcer,
        bus=bus,
        timers=timers,
        http=http,
        escalator=escalator,
        outbox=outbox,
        responders=Responders(config.slack, directory),
        auth=build_authenticator(settings, config, http),
        changes=ChangeLog(db, clock),
        change_window=config.changes.window,
        gates=ReleaseGates(
            db,
            catalog,
            config.gates,
            directory,
            clock,
            requests=None
            if delivery is None
            else SlackGateRequests(outbox, config.slack, fallback_channel=settings.slack_channel),
        ),
        delivery=delivery,
        feed=feed,
        postmortems=postmortem,
        scorecards=scorecard,
        exemplars=exemplars,
        slack_config=config.slack,
        traces=traces,
        syncer=syncer,
        runbooks_config=runbooks_config,
        pruner=None
        if config.inbox.retention is None
        else InboxPruner(db, config.inbox.retention, metrics, clock),
    )
    if delivery is not None:
        services.slack_app = build_slack_app(settings, services)
        if settings.slack_app_token is None:
            services.slack_handler = http_handler(services.slack_app)
    return services


def _load_folder(settings: Settings, registry: ActionRegistry, config: BallastConfig) -> Catalog:
    """The catalog from BALLAST_RUNBOOKS (or runbooks.path); refuse to start on errors."""
    load = load_catalog(
        [settings.runbooks], registry, config.panel_names(), panel_severity="warning"
    )
    for diagnostic in load.diagnostics:
        (log.error if diagnostic.severity == "error" else log.warning)("%s", diagnostic)
    if load.catalog is None:
        raise RunbookError(load.diagnostics)
    return load.catalog


def _live_folder(catalog: LiveCatalog, syncer: RunbookSyncer) -> Callable[[], Path | None]:
    """The runbook folder of the live commit's checkout (team postmortem templates live there)."""

    def folder() -> Path | None:
        revision = catalog.current.revision
        return None if revision is None else revision.root / syncer.source.path

    return folder


def _refusal_reporter(
    source: GitSourceConfig, messenger: Messenger
) -> Callable[[RefusedCommit], Awaitable[None]] | None:
    """Tell runbooks.git.notify_channel about a refused commit, once cluster-wide: the outbox
    keeps one message per idempotency key, whichever replica queues it first."""
    channel = source.notify_channel
    if channel is None:
        return None

    async def report(refused: RefusedCommit) -> None:
        stays = refused.live_commit[:12] if refused.live_commit else "no catalog"
        lines = [
            f"Runbooks commit {refused.commit[:12]} on {source.ref} was refused; "
            f"{stays} stays live.",
            *refused.errors[:20],
        ]
        if len(refused.errors) > 20:
            lines.append(f"... {len(refused.errors) - 20} more: see `ballast runbooks status`")
        await messenger.notify(
            [channel], "\n".join(lines), idempotency_key=f"runbooks-refused:{refused.commit}"
        )

    return report


def prometheus_clients(
    config: BallastConfig, http: httpx.AsyncClient, environ: Mapping[str, str]
) -> ClientFor:
    """Each service's Prometheus client (its own, else the top-level one), built once."""
    built: dict[int, PrometheusClient] = {}

    def client_for(service: str | None) -> PrometheusClient | None:
        chosen = config.prometheus_for(service)
        if chosen is None:
            return None
        if id(chosen) not in built:
            built[id(chosen)] = PrometheusClient(chosen, http, environ)
        return built[id(chosen)]

    return client_for


def build_authenticator(
    settings: Settings, config: BallastConfig, http: httpx.AsyncClient
) -> Authenticator:
    """The API's ways in: named tokens, BALLAST_API_TOKEN, OIDC and a trusted proxy."""
    lookup = None
    if settings.slack_bot_token is not None:
        lookup = slack_email_lookup(slack_client_factory(settings)())
    oidc = None
    if config.auth.oidc is not None:
        people = PersonDirectory(config.auth.oidc.users, lookup)
        oidc = OidcVerifier(config.auth.oidc, http, people)
    proxy = None
    if config.auth.proxy.enabled:
        proxy = TrustedProxy(config.auth.proxy, PersonDirectory(config.auth.proxy.users, lookup))
    api_token = settings.api_token.get_secret_value() if settings.api_token else None
    return Authenticator(config.auth, api_token=api_token, oidc=oidc, proxy=proxy)


def _backends(
    config: BallastConfig,
    builtin: BuiltinControlStore,
    history: ControlHistoryLog,
    http: httpx.AsyncClient,
    environ: Mapping[str, str],
) -> dict[str, ControlBackend]:
    """The control backend of each configured service; "*" (every other) is the built-in."""
    backends: dict[str, ControlBackend] = {"*": builtin}
    for service, options in config.services.items():
        backend = options.backend
        if isinstance(backend, FlagdBackendConfig):
            backends[service] = RecordingBackend(FlagdFileBackend(backend.path), history)
        elif isinstance(backend, UnleashBackendConfig):
            unleash = UnleashBackend(backend, http, environ=environ)
            backends[service] = RecordingBackend(unleash, history)
        else:
            backends[service] = builtin
    return backends


def create_app(services: Services, *, handle_sighup: bool = False) -> FastAPI:
    """The ASGI app. ``handle_sighup`` reloads runbooks on SIGHUP (the server process only)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        phases: list[str] = []
        try:
            # SIGTERM while starting: nothing is served yet, so nothing waits for the start-up.
            recovered = await services.stop.unless_requested(_start_up(services, phases))
        except Stopped:
            where = phases[-1] if phases else "before its first phase"
            log.info("stopped during start-up (%s): nothing was served", where)
            try:
                yield  # uvicorn shuts down at once: its should_exit is set (graceful.py)
            finally:
                if "recovery" in phases:
                    await _hand_back(services)  # a lease the cut recovery took
                await services.http.aclose()
                await services.db.close()
            return
        recovery = _recovery_loop(services, rest_first=recovered)
        recoverer = asyncio.create_task(recovery.run(), name="execution-recovery")
        listener = None
        if services.feed is not None:
            listener = asyncio.create_task(services.feed.run(), name="change-feed")
        worker = asyncio.create_task(services.engine.run(), name="incident-engine")
        pruning = None
        if services.pruner is not None:
            pruning = asyncio.create_task(services.pruner.loop.run(), name="inbox-retention")
        syncing = None
        if services.syncer is not None:
            syncing = asyncio.create_task(services.syncer.loop.run(), name="runbooks-git-sync")
        services.timers.start()
        sender = None
        if services.delivery is not None:
            sender = asyncio.create_task(services.delivery.run(), name="slack-delivery")
        catching_up = None
        if isinstance(services.announcer, SlackAnnouncer):
            catching_up = asyncio.create_task(
                services.announcer.catch_up.run(), name="slack-catch-up"
            )
        socket = None
        if services.slack_app is not None and services.settings.slack_app_token is not None:
            socket = await start_socket_mode(
                services.slack_app, services.settings.slack_app_token.get_secret_value()
            )
        if handle_sighup:
            reloads: set[asyncio.Task[None]] = set()

            def on_sighup() -> None:
                task = asyncio.get_running_loop().create_task(_reload_and_log(services))
                reloads.add(task)  # keep a reference until it is done
                task.add_done_callback(reloads.discard)

            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, on_sighup)
        services.ready = not services.draining  # a SIGTERM as the start-up ended
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
            services.start_draining()
            await recovery.stop(recoverer)
            services.timers.shutdown()
            if services.syncer is not None and syncing is not None:
                await services.syncer.loop.stop(syncing)
            if services.slack_app is not None:
                await drain_lazy_listeners(services.slack_app)  # Slack answers still going out
            if socket is not None:
                await socket.close_async()
            if services.pruner is not None and pruning is not None:
                await services.pruner.loop.stop(pruning)
            await services.engine.stop(worker)
            if isinstance(services.announcer, SlackAnnouncer) and catching_up is not None:
                await services.announcer.catch_up.stop(catching_up)
            # One grace for the mitigations in flight and then the Slack messages to render.
            grace_over = time.monotonic() + services.settings.shutdown_grace
            await services.auto.drain(grace=services.settings.shutdown_grace)
            if services.announcer is not None:
                await services.announcer.drain(grace=max(0.0, grace_over - time.monotonic()))
            if services.scorecards is not None:
                await services.scorecards.drain()
            if services.exemplars is not None:
                await services.exemplars.drain()
            if services.postmortems is not None:
                await services.postmortems.drain()
            if services.delivery is not None and sender is not None:
                await services.delivery.stop(sender)
                await services.delivery.close()
            await _hand_back(services)
            if services.feed is not None and listener is not None:
                await services.feed.stop(listener)
            await services.http.aclose()
            await services.db.close()

    app = DirectApp(
        title="Ballast",
        version=bot.__version__,
        description="Runbook automation and incident response for AI systems in production.",
        lifespan=lifespan,
        openapi_url=None,  # served to readers by bot.api.openapi
        docs_url=None,
        redoc_url=None,
        # FastAPI's own OpenTelemetry: a SERVER span per request (continuing the caller's
        # traceparent), on only when an SDK is installed (bot.telemetry.setup). Not its
        # metrics (Prometheus has them) nor its logs (they would carry alert content), nor
        # spans for probes and scrapes.
        telemetry={
            "operation_spans": False,
            "metrics": False,
            "logs": False,
            "exclude": _untraced,
        },
    )
    app.state.services = services
    install_error_handlers(app)
    install_openapi(app)
    webhooks.install(app)
    ofrep.install(app)
    git_webhook.install(app)
    routers = (
        incidents,
        alerts,
        mitigations,
        postmortems,
        runbooks,
        controls,
        changes,
        gates,
        slack,
        openapi,
    )
    for module in (*routers, health):
        app.include_router(module.router)
    secret = services.settings.web_session_secret
    install_web(app, secret.get_secret_value() if secret else None)
    return app


async def _start_up(services: Services, phases: list[str]) -> bool:
    """What the server does before it is ready, in order, naming each phase in ``phases`` as
    it begins; returns whether the first recovery pass was made (:func:`_first_recovery`)."""
    if services.syncer is not None:  # first: a server with no catalog stops here
        phases.append("the first runbook sync")
        await _first_sync(services.syncer, services.catalog)
    phases.append("migrating the database")
    await services.db.migrate_at_start()  # again while PostgreSQL is away
    services.db.start_housekeeping()
    freeze_startup_heap()  # process-wide GC policy: see bot/runtime/gc_tuning.py
    phases.append("recovery")
    return await _first_recovery(services)  # before ready: what is already expired


async def _first_recovery(services: Services) -> bool:
    """The recovery pass before the replica is ready; False when a transient database error
    (a connection the server had just dropped, a failover under way) stopped it. That must not
    stop the replica from starting: its recovery loop then makes the pass at once."""
    try:
        await services.executor.recover()
    except SQLAlchemyError as err:
        if not is_transient(err):
            raise
        log.warning(
            "execution recovery at start failed (%s: %s); the recovery loop tries again now",
            reason(err),
            err,
        )
        return False
    return True


def _recovery_loop(services: Services, *, rest_first: bool = True) -> WorkerLoop:
    """Take over executions whose lease expired, every third of the lease after the pass at
    start (so a dead replica's work waits at most about 1.3 leases); at once when that pass
    failed (``rest_first`` False)."""

    async def recover() -> float | None:
        if not services.draining:  # after SIGTERM, take over nothing new
            await services.executor.recover()
        return None

    return WorkerLoop(
        recover,
        poll_interval=services.executor.lease_length.total_seconds() / 3,
        log=log,
        failure="execution recovery pass failed; will retry",
        rest_first=rest_first,
    )


async def _first_sync(syncer: RunbookSyncer, catalog: LiveCatalog) -> None:
    """With the last good checkout restored, sync in the background right after start (a hung
    remote must not hold readiness for its timeout). With no catalog yet (first start, or the
    checkout gone), sync before ready and refuse to start unless it brings one."""
    if catalog.version > 0:
        syncer.wake()  # the loop's first pass runs at once
        return
    result = await syncer.sync()
    if catalog.version == 0:
        why = result.detail or "\n".join(result.errors) or result.outcome.value
        raise RunbookError(
            [Diagnostic(Path(syncer.source.display_url), 1, 1, f"no runbook catalog: {why}")]
        )


async def _hand_back(services: Services) -> None:
    """Let another replica take over at once what this one did not finish."""
    try:
        handed = await services.executor.hand_back()
    except Exception:
        log.exception("could not hand back execution leases; they expire on their own")
        return
    if handed:
        log.warning("handed %d unfinished execution(s) back to the other replicas", handed)


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
