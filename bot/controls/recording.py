"""Records changes made through external backends (flagd, Unleash) in Ballast's history.

The built-in store records its own changes in the same transaction; an external backend
cannot, so this wrapper records each successful write or clear right after it, which is what
``to: previous`` rollbacks and the postmortem's before/after read.
"""

from __future__ import annotations

import logging

from actions.backends.base import ControlBackend, FlagValue, WriteResult
from bot.controls.store import ControlHistoryLog

log = logging.getLogger(__name__)


class RecordingBackend(ControlBackend):
    def __init__(self, inner: ControlBackend, history: ControlHistoryLog) -> None:
        self._inner = inner
        self._history = history
        self.name = inner.name  # type: ignore[misc]

    async def read(self, key: str) -> FlagValue | None:
        return await self._inner.read(key)

    async def write(self, key: str, value: FlagValue, *, actor: str, reason: str) -> WriteResult:
        result = await self._inner.write(key, value, actor=actor, reason=reason)
        await self._record(result, actor, reason)
        return result

    async def clear(self, key: str, *, actor: str, reason: str) -> WriteResult:
        result = await self._inner.clear(key, actor=actor, reason=reason)
        await self._record(result, actor, reason)
        return result

    async def _record(self, result: WriteResult, actor: str, reason: str) -> None:
        try:
            await self._history.record_change(
                result.key,
                result.before,
                result.after,
                actor=actor,
                reason=reason,
                source=self._inner.name,
            )
        except Exception:
            # The change itself happened; losing its history line must not hide that.
            log.exception("recorded no history for %s after a %s change", result.key, self.name)
