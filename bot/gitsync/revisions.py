"""A runbook folder as it was at a git revision of a local repository (``runbooks diff``).

Run from the command line on the reviewer's or CI's own checkout, so git runs with their
environment (their config, their credentials are not needed: nothing is fetched). Arguments are
a list; no shell.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from bot.gitsync.git import GitError
from bot.gitsync.syncer import untar


def extract_revision(repo: Path, revision: str, folder: str, into: Path) -> Path:
    """Write ``folder`` as it is at ``revision`` under ``into``; the folder's path there."""
    if revision.startswith("-"):
        raise GitError(f"{revision!r} is not a revision")
    target = f"{revision}:{folder}" if folder != "." else f"{revision}^{{tree}}"
    kind = _git(repo, "cat-file", "-t", target).strip()
    if kind != b"tree":
        raise GitError(f"{folder} is not a folder at {revision}")
    args = ["archive", "--format=tar", revision]
    if folder != ".":
        args.append(folder)
    untar(_git(repo, *args), into)
    return into / folder


def _git(repo: Path, *args: str) -> bytes:
    try:
        done = subprocess.run(  # noqa: S603 (fixed executable, arguments as a list)
            ["git", "-C", str(repo), *args],  # noqa: S607 (git from PATH, as the user runs it)
            capture_output=True,
            check=False,
            timeout=120,
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        raise GitError(f"git {args[0]}: {err}") from None
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip() or "no message"
        raise GitError(f"git {args[0]} failed: {message}")
    return done.stdout
