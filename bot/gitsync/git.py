"""Running the ``git`` command line: a clean environment, a hard timeout, secrets redacted.

Why the git CLI and not a library (pygit2, dulwich): the CLI is what the hosts people use speak
with. It brings every transport (smart HTTP with protocol v2, ssh through the system's OpenSSH
and its strict known_hosts checking, file://), every way of authenticating, and the security
fixes of the distribution's git; pygit2 needs a libgit2 built with libssh2 for ssh, and dulwich
lags on protocol v2 and on ssh host-key checking. A subprocess can also be killed at its timeout
whatever it is blocked on, which a library call on a thread cannot.

Every call runs with a minimal environment built here, never the inherited one: no global or
system git config (so no credential helpers, no ``url.insteadOf`` surprises), no terminal
prompts, only the protocols runbook URLs may use, and the token passed through
``GIT_CONFIG_*`` variables rather than the argument list (which other users can read in
``/proc``). Arguments are a list; no shell is involved.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import shlex
import signal
from dataclasses import dataclass
from pathlib import Path

REDACTED = "***"


@dataclass(frozen=True, slots=True)
class GitCredentials:
    """How to authenticate to the remote; empty for file:// and anonymous https."""

    token: str | None = None
    token_username: str = "x-access-token"  # noqa: S105 (a user name, not a secret)
    ssh_key: Path | None = None
    known_hosts: Path | None = None

    def secrets(self) -> list[str]:
        """Every form of the token that could show up in git's output."""
        if not self.token:
            return []
        return [self.token, self._basic()]

    def _basic(self) -> str:
        pair = f"{self.token_username}:{self.token}".encode()
        return base64.b64encode(pair).decode()

    def config(self) -> list[tuple[str, str]]:
        """git config entries for this remote (passed in the environment)."""
        entries = [("credential.helper", ""), ("protocol.version", "2")]
        if self.token:
            entries.append(("http.extraHeader", f"Authorization: Basic {self._basic()}"))
        return entries

    def ssh_command(self) -> str | None:
        if self.known_hosts is None:
            return None
        words = [
            "ssh",
            "-F",
            os.devnull,
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            f"UserKnownHostsFile={self.known_hosts}",
        ]
        if self.ssh_key is not None:
            words += ["-o", "IdentitiesOnly=yes", "-i", str(self.ssh_key)]
        return shlex.join(words)  # git runs GIT_SSH_COMMAND through sh: quote every word


class GitError(Exception):
    """A git command failed or timed out; the message never carries a secret."""


@dataclass(frozen=True, slots=True)
class GitOutput:
    stdout: bytes
    stderr: str


class Git:
    """One bare repository, driven through the git CLI."""

    def __init__(
        self,
        git_dir: Path,
        *,
        timeout: float,
        credentials: GitCredentials | None = None,
        executable: str = "git",
    ) -> None:
        self.git_dir = git_dir
        self._timeout = timeout
        self._credentials = credentials or GitCredentials()
        self._executable = executable

    def environment(self) -> dict[str, str]:
        """The whole environment git runs with: nothing inherited but PATH."""
        home = self.git_dir.parent
        env = {
            "PATH": os.environ.get("PATH", os.defpath),
            "HOME": str(home),  # no ~/.gitconfig, ~/.ssh/config or ~/.netrc of the server user
            "LC_ALL": "C",
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_ALLOW_PROTOCOL": "https:http:ssh:file:git",
            "GIT_DIR": str(self.git_dir),
        }
        entries = self._credentials.config()
        env["GIT_CONFIG_COUNT"] = str(len(entries))
        for index, (key, value) in enumerate(entries):
            env[f"GIT_CONFIG_KEY_{index}"] = key
            env[f"GIT_CONFIG_VALUE_{index}"] = value
        ssh = self._credentials.ssh_command()
        if ssh is not None:
            env["GIT_SSH_COMMAND"] = ssh
        return env

    async def run(self, *args: str) -> GitOutput:
        """Run ``git ARGS``; raise :class:`GitError` (redacted) on failure or timeout."""
        what = f"git {args[0]}" if args else "git"
        try:
            process = await asyncio.create_subprocess_exec(
                self._executable,
                *args,
                env=self.environment(),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,  # its helpers (ssh, remote-https) die with it
            )
        except OSError as err:
            raise GitError(f"cannot run {self._executable}: {err.strerror}") from None
        try:
            stdout, stderr = await asyncio.wait_for(process.communicate(), self._timeout)
        except (TimeoutError, asyncio.CancelledError) as err:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
            if isinstance(err, asyncio.CancelledError):
                raise
            raise GitError(f"{what} timed out after {self._timeout:g}s") from None
        text = self.redact(stderr.decode("utf-8", "replace")).strip()
        if process.returncode != 0:
            raise GitError(f"{what} failed (exit {process.returncode}): {text or 'no message'}")
        return GitOutput(stdout, text)

    def redact(self, text: str) -> str:
        for secret in self._credentials.secrets():
            text = text.replace(secret, REDACTED)
        return text
