"""Builds the ActionContext an action runs with, from what ``bot.app`` wired."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from actions.backends.base import ControlBackend
from actions.context import (
    ActionContext,
    BackendResolver,
    ControlHistory,
    ControlPlan,
    HttpPolicy,
    Messenger,
    Pager,
)
from actions.errors import FinalError

log = logging.getLogger("ballast.console")


class ConsoleMessenger:
    """Without Slack: print what would have been sent, and say so in the outcome."""

    async def notify(self, to: list[str], text: str, *, idempotency_key: str) -> dict[str, Any]:
        log.info("[slack: would notify %s] %s", ", ".join(to), text)
        return {"delivered": False, "console": True, "to": to}


class NoPager:
    """No paging targets configured: paging fails loudly rather than silently."""

    async def page(
        self, target: str, summary: str, severity: str, *, dedup_key: str
    ) -> dict[str, Any]:
        raise FinalError(
            f"cannot page {target!r}: no paging targets are configured; add it under "
            "`paging:` in ballast.yaml (PagerDuty or Opsgenie)"
        )


@dataclass(frozen=True, slots=True)
class ContextFactory:
    backends: Mapping[str, ControlBackend]  # per service; "*" is the default
    history: ControlHistory
    http: httpx.AsyncClient
    messenger: Messenger
    pager: Pager
    http_policy: HttpPolicy

    def backend_for(self, service: str) -> ControlBackend:
        backend = self.backends.get(service) or self.backends.get("*")
        if backend is None:
            raise FinalError(
                f"no control backend for service {service!r}; set services.{service}.controls "
                "in ballast.yaml"
            )
        return backend

    def make(
        self,
        *,
        actor: str,
        idempotency_key: str,
        reason: str = "",
        dry_run: bool = False,
        plan: ControlPlan | None = None,
        backend_for: BackendResolver | None = None,
    ) -> ActionContext:
        """``backend_for``: in place of the configured backends (the executor's one-transaction
        run hands in the built-in store bound to its transaction)."""
        return ActionContext(
            backend_for=backend_for or self.backend_for,
            history=self.history,
            http=self.http,
            messenger=self.messenger,
            pager=self.pager,
            http_policy=self.http_policy,
            actor=actor,
            idempotency_key=idempotency_key,
            reason=reason,
            dry_run=dry_run,
            plan=plan,
        )
