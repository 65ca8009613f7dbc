"""Drafts postmortems on demand and on resolve, and delivers them: store, folder, publisher.

On resolve (a ``RESOLVED`` change on the bus) the draft is made in its own task, so a slow
language model never holds up whoever resolved the incident; ``drain`` waits for them. Each
resolve makes a new stored draft (a re-opened incident gets a fresh one when it resolves
again) and rewrites the file, which keeps one name per incident. Where else a draft goes (the
incident's Slack thread) is a :class:`DraftPublisher` the app passes in: the postmortem makes
the draft, the front end decides how it looks there.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import tempfile
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from actions.registry import ActionRegistry
from bot.changelog.ranking import DEFAULT_WINDOW
from bot.config import PostmortemConfig
from bot.incidents.changes import ChangeKind, IncidentChange
from bot.incidents.traces import TraceLinks
from bot.postmortem.draft import Draft, file_name, render_draft
from bot.postmortem.facts import collect_facts
from bot.postmortem.models import PostmortemFacts
from bot.postmortem.polish import polish_summary
from bot.runbooks.catalog import LiveCatalog
from bot.store.database import Database
from bot.store.tables import StoredPostmortem

log = logging.getLogger(__name__)


class DraftPublisher(Protocol):
    async def publish_draft(self, session: AsyncSession, draft: Draft, key: str) -> bool:
        """Queue ``draft`` in ``session``'s transaction, idempotent per ``key``.

        False when it has nowhere to go (the incident has no thread).
        """
        ...


class PostmortemService:
    def __init__(
        self,
        db: Database,
        catalog: LiveCatalog,
        registry: ActionRegistry,
        config: PostmortemConfig,
        *,
        runbooks_root: Path | Callable[[], Path | None] | None,
        clock: Callable[[], datetime],
        http: httpx.AsyncClient,
        environ: Mapping[str, str],
        publisher: DraftPublisher | None = None,
        change_window: timedelta = DEFAULT_WINDOW,
        traces: TraceLinks | None = None,
    ) -> None:
        self._traces = traces
        self._db = db
        self._change_window = change_window
        self._catalog = catalog
        self._registry = registry
        self._config = config
        self._root = runbooks_root
        self._clock = clock
        self._http = http
        self._environ = environ
        self._publisher = publisher
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def folder(self) -> Path:
        return self._config.folder

    async def facts(self, incident_id: int) -> PostmortemFacts:
        return await collect_facts(
            self._db,
            self._catalog,
            self._registry,
            incident_id,
            change_window=self._change_window,
            traces=self._traces,
            now=self._clock(),
        )

    async def draft(self, incident_id: int, *, polish: bool = False) -> Draft:
        """A fresh draft from the current facts (``polish``: ask the model, if configured)."""
        return await self._draft(await self.facts(incident_id), polish=polish)

    async def _draft(self, facts: PostmortemFacts, *, polish: bool) -> Draft:
        # From git the folder moves with each commit: ask for the live one each time.
        root = self._root() if callable(self._root) else self._root
        draft = render_draft(facts, runbooks_root=root)
        if polish and self._config.llm is not None:
            better = await polish_summary(
                self._http, self._config.llm, draft.summary, self._environ
            )
            if better is not None:
                draft = render_draft(facts, runbooks_root=root, summary=better)
        return draft

    async def publish(self, incident_id: int) -> tuple[Draft, Path]:
        """Draft (polished if configured), keep it, write it to the folder, post it."""
        facts = await self.facts(incident_id)
        draft = await self._draft(facts, polish=True)
        path = self._config.folder / file_name(facts)
        await asyncio.to_thread(write_atomically, path, draft.markdown)
        async with self._db.transaction() as session:
            row = StoredPostmortem(
                incident_id=incident_id,
                markdown=draft.markdown,
                summary=draft.summary,
                polished=draft.polished,
                path=str(path),
                created_at=self._clock(),
            )
            session.add(row)
            await session.flush()
            if self._publisher is not None:
                await self._publisher.publish_draft(session, draft, f"postmortem:{row.id}")
        log.info("postmortem of #%d written to %s", incident_id, path)
        return draft, path

    async def latest(self, incident_id: int) -> StoredPostmortem | None:
        async with self._db.sessions() as session:
            row: StoredPostmortem | None = await session.scalar(
                select(StoredPostmortem)
                .where(StoredPostmortem.incident_id == incident_id)
                .order_by(StoredPostmortem.id.desc())
                .limit(1)
            )
            return row

    async def post_on_demand(self, draft: Draft) -> bool:
        """Publish ``draft`` (into the incident's thread); False: nowhere to publish it.

        Keyed by content: asking twice for an unchanged draft posts it once.
        """
        if self._publisher is None:
            return False
        digest = hashlib.sha256(draft.markdown.encode()).hexdigest()[:16]
        async with self._db.transaction() as session:
            return await self._publisher.publish_draft(
                session, draft, f"postmortem-ask:{draft.incident_id}:{digest}"
            )

    # ---- the bus ------------------------------------------------------------------------

    async def incidents_changed(self, changes: list[IncidentChange]) -> None:
        for change in changes:
            if ChangeKind.RESOLVED in change.kinds:
                task = asyncio.create_task(self._publish_logged(change.incident_id))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _publish_logged(self, incident_id: int) -> None:
        try:
            await self.publish(incident_id)
        except Exception:
            log.exception("postmortem of incident #%d failed", incident_id)

    async def drain(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


def write_atomically(path: Path, text: str) -> None:
    """Write to a temporary file beside ``path``, then rename: readers never see half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
