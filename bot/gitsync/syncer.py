"""Keep the live catalog at the newest valid commit of a git ref.

Each pass fetches the ref into Ballast's own bare repository (``<workdir>/repo.git``), and when
it moved, extracts the runbook folder at the new commit into ``<workdir>/checkouts/<commit>``,
validates it with the same loader as ``ballast runbooks validate``, and swaps it in through the
:class:`~bot.runbooks.catalog.LiveCatalog` (the holder SIGHUP and ``POST
/api/v1/runbooks/reload`` use). An invalid commit is refused: its diagnostics are logged, counted
in ``/metrics``, kept in the state and handed once to ``on_refused`` (a Slack message), and the
last good commit stays live.

``<workdir>/state.json`` names the live commit and the last refused one. The live commit's
checkout stays on disk, so a restart with the remote unreachable serves it
(:meth:`RunbookSyncer.restore`). Replicas do not coordinate: each polls the same ref and so
converges on the same commit within one poll interval (at once with a push webhook).
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import shutil
import tarfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from actions import ActionRegistry
from bot.config import GitSourceConfig
from bot.errors import Diagnostic
from bot.gitsync.git import Git, GitCredentials, GitError
from bot.metrics import Metrics
from bot.runbooks.catalog import LiveCatalog
from bot.runbooks.snapshot import Revision
from bot.runtime.worker import WorkerLoop

log = logging.getLogger(__name__)

FETCHED_REF = "refs/ballast/fetched"
STATE_FILE = "state.json"
MAX_REPORTED_ERRORS = 50


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class LiveCommit:
    commit: str
    since: datetime


@dataclass(frozen=True, slots=True)
class RefusedCommit:
    """A commit that failed validation, with its errors as ``path:line:col: message`` (paths
    inside the repository)."""

    commit: str
    at: datetime
    errors: tuple[str, ...]
    live_commit: str | None = None  # what stayed live instead


@dataclass(frozen=True, slots=True)
class SyncState:
    live: LiveCommit | None = None
    refused: RefusedCommit | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "live": None
            if self.live is None
            else {"commit": self.live.commit, "since": self.live.since.isoformat()},
            "refused": None
            if self.refused is None
            else {
                "commit": self.refused.commit,
                "at": self.refused.at.isoformat(),
                "errors": list(self.refused.errors),
                "live_commit": self.refused.live_commit,
            },
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SyncState:
        live = data.get("live")
        refused = data.get("refused")
        return cls(
            live=None
            if not live
            else LiveCommit(live["commit"], datetime.fromisoformat(live["since"])),
            refused=None
            if not refused
            else RefusedCommit(
                refused["commit"],
                datetime.fromisoformat(refused["at"]),
                tuple(refused["errors"]),
                refused.get("live_commit"),
            ),
        )


class SyncOutcome(StrEnum):
    LIVE = "live"  # a new commit went live
    UNCHANGED = "unchanged"  # the ref still points at the live commit
    REFUSED = "refused"  # the ref points at an invalid commit; the last good one stays live
    FAILED = "failed"  # the remote could not be reached or git failed


@dataclass(frozen=True, slots=True)
class SyncResult:
    outcome: SyncOutcome
    commit: str | None
    errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    detail: str | None = None


OnRefused = Callable[[RefusedCommit], Awaitable[None]]


@dataclass(slots=True)
class _Progress:
    checked_at: datetime | None = None  # last successful fetch
    fetch_error: str | None = None  # the last fetch's error, until one succeeds
    validated: set[str] = field(default_factory=set)  # refused commits not to check again


class RunbookSyncer:
    """Fetch, validate and swap in runbooks from one git ref; keep the last good commit."""

    def __init__(
        self,
        source: GitSourceConfig,
        live: LiveCatalog,
        registry: ActionRegistry,
        metrics: Metrics,
        *,
        token: str | None = None,
        clock: Callable[[], datetime] = utc_now,
        on_refused: OnRefused | None = None,
        web_url: str | None = None,
        executable: str = "git",
    ) -> None:
        self.source = source
        self._live = live
        self._registry = registry
        self._metrics = metrics
        self._clock = clock
        self.on_refused = on_refused
        self._web_url = web_url
        self._workdir = source.workdir
        credentials = GitCredentials(
            token=token,
            token_username=source.token_username,
            ssh_key=source.ssh_key,
            known_hosts=source.known_hosts,
        )
        self._git = Git(
            self._workdir / "repo.git",
            timeout=source.timeout.total_seconds(),
            credentials=credentials,
            executable=executable,
        )
        self._lock = asyncio.Lock()
        self._state = self._read_state()
        self._progress = _Progress()
        self.loop = WorkerLoop(
            self._pass,
            poll_interval=source.poll_interval.total_seconds(),
            log=log,
            failure="runbook git sync failed; will retry",
            rest_first=True,
        )

    @property
    def state(self) -> SyncState:
        return self._state

    def wake(self) -> None:
        """Sync now (a push webhook arrived) instead of at the next poll."""
        self.loop.wake()

    def restore(self) -> LiveCommit | None:
        """Serve the last good commit's checkout, without the network (at start-up)."""
        live = self._state.live
        if live is None:
            return None
        checkout = self._checkout(live.commit)
        if not checkout.is_dir():
            log.warning("runbooks: the checkout of live commit %s is gone", live.commit)
            return None
        load = self._live.reload(
            [checkout / self.source.path],
            self._registry,
            Revision(live.commit, checkout, self._web_url),
        )
        if load.catalog is None:
            log.error(
                "runbooks: the last good commit %s no longer validates:\n%s",
                live.commit,
                "\n".join(self._lines(load.errors, checkout)),
            )
            return None
        self._set_live_metrics(live)
        log.info("runbooks: serving commit %s until the remote answers", live.commit)
        return live

    async def sync(self) -> SyncResult:
        """One fetch-validate-swap, one at a time."""
        async with self._lock:
            result = await self._sync()
        self._metrics.runbooks_git_syncs.labels(result.outcome.value).inc()
        return result

    async def _pass(self) -> float | None:
        await self.sync()
        return None

    async def _sync(self) -> SyncResult:
        try:
            commit = await self._fetch()
        except GitError as err:
            self._progress.fetch_error = str(err)
            log.warning("runbooks: fetching %s failed: %s", self._where(), err)
            return SyncResult(SyncOutcome.FAILED, None, detail=str(err))
        self._progress.fetch_error = None
        self._progress.checked_at = self._clock()
        current = self._live.current.revision
        if current is not None and current.commit == commit:
            self._metrics.runbooks_git_refused.set(0)
            return SyncResult(SyncOutcome.UNCHANGED, commit)
        refused = self._state.refused
        if refused is not None and refused.commit == commit and commit in self._progress.validated:
            return SyncResult(SyncOutcome.REFUSED, commit, refused.errors)
        try:
            checkout = await self._extract(commit)
        except (_MissingFolder, tarfile.TarError) as err:  # TarError: a link out of the folder
            return await self._refuse(commit, (str(err),))
        load = await self._live.areload(
            [checkout / self.source.path], self._registry, Revision(commit, checkout, self._web_url)
        )
        warnings = tuple(self._lines(load.warnings, checkout))
        if load.catalog is None:
            shutil.rmtree(checkout, ignore_errors=True)
            result = await self._refuse(commit, tuple(self._lines(load.errors, checkout)))
            return replace(result, warnings=warnings)
        previous = self._state.live
        live = LiveCommit(commit, self._clock())
        self._state = replace(self._state, live=live)
        self._write_state()
        self._prune(keep={commit, previous.commit if previous else commit})
        self._set_live_metrics(live)
        self._metrics.runbooks_git_refused.set(0)
        self._metrics.catalog_reloads.labels("ok").inc()
        log.info(
            "runbooks: commit %s of %s is live (%d runbooks)",
            commit,
            self._where(),
            len(self._live.current.runbooks),
        )
        return SyncResult(SyncOutcome.LIVE, commit, warnings=warnings)

    async def _refuse(self, commit: str, errors: tuple[str, ...]) -> SyncResult:
        live = self._state.live
        refused = RefusedCommit(commit, self._clock(), errors, live.commit if live else None)
        self._state = replace(self._state, refused=refused)
        self._write_state()
        self._progress.validated.add(commit)
        self._metrics.runbooks_git_refused.set(1)
        self._metrics.runbooks_git_refused_commits.inc()
        self._metrics.catalog_reloads.labels("refused").inc()
        log.error(
            "runbooks: commit %s of %s refused, keeping %s live:\n%s",
            commit,
            self._where(),
            refused.live_commit or "no catalog",
            "\n".join(errors),
        )
        if self.on_refused is not None:
            try:
                await self.on_refused(refused)
            except Exception:
                log.exception("runbooks: could not report refused commit %s", commit)
        return SyncResult(SyncOutcome.REFUSED, commit, errors)

    async def _fetch(self) -> str:
        """Fetch the ref; the commit it points at."""
        if not (self._git.git_dir / "HEAD").exists():
            self._git.git_dir.mkdir(parents=True, exist_ok=True)
            await self._git.run("init", "--bare", "--quiet")
        refspec = f"+{self.source.full_ref}:{FETCHED_REF}"
        await self._git.run("fetch", "--no-tags", "--quiet", self.source.url, refspec)
        out = await self._git.run("rev-parse", "--verify", f"{FETCHED_REF}^{{commit}}")
        return out.stdout.decode().strip()

    async def _extract(self, commit: str) -> Path:
        """The commit's files in ``checkouts/<commit>`` (written aside, then renamed in)."""
        checkout = self._checkout(commit)
        if checkout.is_dir():
            return checkout
        folder = self.source.path
        try:
            kind = await self._git.run("cat-file", "-t", f"{commit}:{folder}")
        except GitError:
            kind = None
        if kind is None or kind.stdout.strip() != b"tree":
            raise _MissingFolder(
                f"{folder}: runbooks.git.path names no folder in commit {commit}; "
                "was the folder moved or renamed?"
            )
        args = ["archive", "--format=tar", commit]
        if folder != ".":
            args.append(folder)
        archive = await self._git.run(*args)
        aside = checkout.with_name(f".{commit}.partial")
        try:
            await asyncio.to_thread(untar, archive.stdout, aside)
        except tarfile.TarError:
            shutil.rmtree(aside, ignore_errors=True)
            raise
        os.replace(aside, checkout)
        return checkout

    def _checkout(self, commit: str) -> Path:
        return self._workdir / "checkouts" / commit

    def _prune(self, keep: set[str]) -> None:
        """Drop checkouts of commits no catalog can still refer to."""
        folder = self._workdir / "checkouts"
        for entry in folder.iterdir():
            if entry.name not in keep:
                shutil.rmtree(entry, ignore_errors=True)

    def _read_state(self) -> SyncState:
        path = self._workdir / STATE_FILE
        try:
            return SyncState.from_json(json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            return SyncState()
        except (OSError, ValueError, KeyError, TypeError) as err:
            log.warning("runbooks: ignoring unreadable %s: %s", path, err)
            return SyncState()

    def _write_state(self) -> None:
        """Write aside, flush, rename: a crash leaves the old state or the new, never half."""
        path = self._workdir / STATE_FILE
        aside = path.with_name(f".{STATE_FILE}.partial")
        self._workdir.mkdir(parents=True, exist_ok=True)
        with aside.open("w", encoding="utf-8") as out:
            json.dump(self._state.to_json(), out, indent=2)
            out.flush()
            os.fsync(out.fileno())
        os.replace(aside, path)

    def _set_live_metrics(self, live: LiveCommit) -> None:
        self._metrics.runbooks_git_live_since.set(live.since.timestamp())

    def _lines(self, diagnostics: list[Diagnostic], checkout: Path) -> list[str]:
        """Diagnostics with paths inside the repository, at most MAX_REPORTED_ERRORS."""
        lines = []
        for diagnostic in diagnostics[:MAX_REPORTED_ERRORS]:
            try:
                path = diagnostic.path.relative_to(checkout)
            except ValueError:
                path = diagnostic.path
            lines.append(str(replace(diagnostic, path=path)))
        if len(diagnostics) > MAX_REPORTED_ERRORS:
            lines.append(f"... and {len(diagnostics) - MAX_REPORTED_ERRORS} more")
        return lines

    def _where(self) -> str:
        return f"{self.source.display_url} {self.source.ref}"

    def status(self) -> dict[str, Any]:
        """What ``GET /api/v1/runbooks`` and ``ballast runbooks status`` show."""
        state = self._state.to_json()
        live = state["live"] or {}
        return {
            "url": self.source.display_url,
            "ref": self.source.ref,
            "path": self.source.path,
            "commit": live.get("commit"),
            "since": live.get("since"),
            "checked_at": None
            if self._progress.checked_at is None
            else self._progress.checked_at.isoformat(),
            "fetch_error": self._progress.fetch_error,
            "refused": state["refused"],
        }


class _MissingFolder(Exception):
    pass


def untar(data: bytes, into: Path) -> None:
    """Extract a ``git archive`` tar; the ``data`` filter refuses links out of the folder.

    Python 3.11.0-3.11.3 have no extraction filters: there only plain files and folders with
    relative paths inside ``into`` are extracted, and anything else (a link, a device, ``..``)
    refuses the commit.
    """
    if into.exists():
        shutil.rmtree(into)
    into.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive:
        if hasattr(tarfile, "data_filter"):
            archive.extractall(into, filter="data")
            return
        root = into.resolve()
        members = archive.getmembers()
        for member in members:
            target = (into / member.name).resolve()
            if not (member.isfile() or member.isdir()) or not target.is_relative_to(root):
                raise tarfile.TarError(
                    f"{member.name!r}: only plain files and folders inside the runbook folder "
                    "can be extracted on this Python (3.11.4 or newer extracts links safely)"
                )
        archive.extractall(into, members=members)  # noqa: S202 (each member checked above)


def last_good_folder(source: GitSourceConfig) -> Path | None:
    """The runbook folder of the live commit's checkout, for commands run beside a server."""
    try:
        data = json.loads((source.workdir / STATE_FILE).read_text(encoding="utf-8"))
        live = SyncState.from_json(data).live
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if live is None:
        return None
    folder = source.workdir / "checkouts" / live.commit / source.path
    return folder if folder.is_dir() else None
