"""``ballast serve`` with runbooks from git, as a process, against a bare repo over smart HTTP.

The whole loop a user sees: the first sync at start, ``ballast runbooks status``, a broken push
refused on SIGHUP (status exits 1), a fix pushed and announced by a signed webhook, and a
restart with the remote down that still serves the last good commit.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.processes import wait_until
from tests.gitsync.remote import BROKEN, GitRemote, SmartHttpRemote, runbook
from tests.principals import POST_ALERTS, READ, roster_yaml

pytestmark = pytest.mark.slow
SECRET = "webhook-secret-for-e2e"


def status(url: str) -> subprocess.CompletedProcess[str]:
    token = READ["authorization"].removeprefix("Bearer ")
    env = {k: v for k, v in os.environ.items() if not k.startswith("BALLAST_")}
    return subprocess.run(
        [sys.executable, "-m", "bot", "runbooks", "status", "--url", url, "--token", token],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=60,
    )


def live(url: str) -> str | None:
    body = httpx.get(f"{url}/api/v1/runbooks", headers=READ, timeout=5).json()
    return body["revision"]  # type: ignore[no-any-return]


def test_a_server_follows_its_git_remote(make_server: Any, tmp_path: Path) -> None:
    remote = GitRemote(tmp_path / "git")
    good = remote.commit({"runbooks/checkout.yaml": runbook()})
    served = SmartHttpRemote(remote)
    served.start()
    config = tmp_path / "ballast.yaml"
    config.write_text(
        roster_yaml()
        + "runbooks:\n  git:\n"
        + f"    url: {served.url}\n    path: runbooks\n    poll_interval: 1h\n"
        + f"    workdir: {tmp_path / 'workdir'}\n"
    )
    server = make_server(BALLAST_CONFIG=str(config), BALLAST_GIT_WEBHOOK_SECRET=SECRET)
    try:
        server.start()
        assert live(server.url) == good
        shown = status(server.url)
        assert shown.returncode == 0, shown.stderr
        assert f"live:   {good} since " in shown.stdout

        bad = remote.commit({"runbooks/checkout.yaml": BROKEN}, "break it")
        server.process.send_signal(signal.SIGHUP)
        wait_until(lambda: f"commit {bad} of" in server.logs(), 20, "the refusal to be logged")
        shown = status(server.url)
        assert shown.returncode == 1, shown.stdout
        assert f"refused: {bad} at " in shown.stdout
        assert live(server.url) == good

        fixed = remote.commit({"runbooks/checkout.yaml": runbook(title="Fixed")}, "fix it")
        body = json.dumps({"ref": "refs/heads/main", "after": fixed}).encode()
        digest = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        answer = httpx.post(
            f"{server.url}/webhooks/git",
            content=body,
            headers={"X-GitHub-Event": "push", "X-Hub-Signature-256": f"sha256={digest}"},
            timeout=5,
        )
        assert answer.status_code == 202, answer.text
        wait_until(lambda: live(server.url) == fixed, 20, "the pushed fix to go live")
        assert status(server.url).returncode == 0
        check_diff_from_server(server.url, tmp_path)
        server.stop()

        served.stop()  # the remote goes down; the server restarts on its last good checkout
        server.start()
        assert live(server.url) == fixed
        wait_until(
            lambda: "fetch error: git fetch failed" in status(server.url).stdout,
            20,
            "the failed fetch to show",
        )
    finally:
        served.stop()


def check_diff_from_server(url: str, tmp_path: Path) -> None:
    """``ballast runbooks diff --from-server``: the server's alerts, replayed through two
    folders; the alert moves to the NEW folder's runbook."""
    alert = {"labels": {"alertname": "HighErrorRate", "service": "checkout"}}
    posted = httpx.post(f"{url}/webhooks/generic", json=alert, headers=POST_ALERTS, timeout=5)
    assert posted.status_code == 200, posted.text
    old, new = tmp_path / "old", tmp_path / "new"
    for folder, runbook_id in ((old, "checkout/high-error-rate"), (new, "checkout/errors-v2")):
        folder.mkdir()
        (folder / "checkout.yaml").write_text(runbook(runbook_id))
    token = READ["authorization"].removeprefix("Bearer ")
    command = [sys.executable, "-m", "bot", "runbooks", "diff", "--from-server", url]
    done = subprocess.run(
        [*command, "--since", "1h", "--token", token, str(old), str(new)],
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("BALLAST_")},
        check=False,
        timeout=60,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "checkout/high-error-rate | checkout/errors-v2 |" in done.stdout
