"""Graceful shutdown on SIGTERM, in the order a rolling update needs.

Kubernetes sends SIGTERM and, at the same moment, starts removing the pod from its Service;
proxies learn of it a little later. So on SIGTERM Ballast first turns readiness false and keeps
serving for ``BALLAST_SHUTDOWN_DELAY`` (2 s), then stops accepting connections and gives the
requests in flight ``BALLAST_SHUTDOWN_GRACE`` (20 s) to finish; the app's shutdown then stops
the workers (the engine finishes its batch, the Slack sender its calls) and hands leases of
executions it could not finish back to the other replicas. The process exits 0. A SIGTERM
before the server is ready (migrating while PostgreSQL is away, a first runbook sync) ends
the start-up at once and exits 0 as well.

uvicorn alone would stop accepting at once, and re-raise SIGTERM after its shutdown, so the
process ended by the signal (status 143) instead of exiting cleanly.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType

import uvicorn

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ShutdownTimes:
    delay: float = 2.0  # seconds serving with readiness false
    grace: float = 20.0  # seconds for what is in flight


class GracefulServer(uvicorn.Server):
    """A uvicorn server whose SIGTERM first calls ``on_draining`` (readiness false), then
    stops after ``times.delay`` (at once while it is still starting: ``on_draining`` must end
    the app's start-up too). SIGINT (Ctrl-C) stops at once, as before."""

    def __init__(
        self, config: uvicorn.Config, times: ShutdownTimes, on_draining: Callable[[], None]
    ) -> None:
        super().__init__(config)
        self._times = times
        self._on_draining = on_draining
        self._terminating = False

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if sig != signal.SIGTERM:
            super().handle_exit(sig, frame)
            return
        if self._terminating:
            return  # a second SIGTERM changes nothing; the shutdown is under way
        self._terminating = True
        self._on_draining()
        if not self.started:
            # Still starting: nothing is served or in flight, and no proxy routes here yet.
            # The app's start-up ends at once (on_draining asked it to): stop without delay.
            log.info("SIGTERM during start-up: stopping without serving")
            self.should_exit = True
            return
        log.info(
            "SIGTERM: readiness is false; serving %.1fs more, then %.1fs for work in flight",
            self._times.delay,
            self._times.grace,
        )
        # Not appended to _captured_signals: uvicorn would re-raise it after the shutdown.
        timer = threading.Timer(self._times.delay, self._stop)
        timer.daemon = True
        timer.start()

    def _stop(self) -> None:
        self.should_exit = True  # the server's main loop looks at it every tick


def run(
    app: object, host: str, port: int, times: ShutdownTimes, on_draining: Callable[[], None]
) -> None:
    """Serve ``app`` until SIGTERM or SIGINT, shutting down as above."""
    config = uvicorn.Config(
        app,  # type: ignore[arg-type]
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        proxy_headers=False,
        timeout_graceful_shutdown=max(int(times.grace), 1),
    )
    GracefulServer(config, times, on_draining).run()
