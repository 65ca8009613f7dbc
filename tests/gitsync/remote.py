"""A real git remote on loopback: a bare repository served over file:// and smart HTTP.

Smart HTTP is ``git http-backend`` (a CGI) behind a small ``wsgiref`` server in a thread: the
backend gets the CGI environment (GIT_PROJECT_ROOT, PATH_INFO, QUERY_STRING, the request body
on stdin) and answers CGI headers (``Status:``…), a blank line, then the body. The server can
require HTTP basic auth (to prove the token is sent and never shown) and can be stopped (the
remote "down").
"""

from __future__ import annotations

import base64
import os
import subprocess
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from tests.conftest import need_binary

RUNBOOK = """\
id: {id}
title: "{title} on {{{{ labels.service }}}}"
service: checkout
severity: sev2
owners: ["@checkout-oncall"]
match:
  - alertname="{alertname}"
  - service="checkout"
group_by: [alertname, service]
symptom: Checkout returns 5xx to more than 5% of requests.
business_impact: Customers cannot complete purchases.
mitigations:
  - id: {mitigation}
    title: Send every answer to human review
    action: force_human_review
    params: {{service: "{{{{ labels.service }}}}", level: {level}}}
    mode: {mode}
tests:
  - alert: {{labels: {{alertname: {alertname}, service: checkout}}}}
    expect: match
"""


def runbook(
    runbook_id: str = "checkout/high-error-rate",
    *,
    title: str = "Checkout errors high",
    alertname: str = "HighErrorRate",
    mitigation: str = "review-all",
    level: str = "all",
    mode: str = "approve",
) -> str:
    """A valid runbook file's text."""
    return RUNBOOK.format(
        id=runbook_id,
        title=title,
        alertname=alertname,
        mitigation=mitigation,
        level=level,
        mode=mode,
    )


BROKEN = runbook(level="yolo")  # an invalid param: refused on load


def git_env(home: Path) -> dict[str, str]:
    """The tests' own git: no user or system config, a fixed author."""
    return {
        "PATH": os.environ.get("PATH", os.defpath),
        "HOME": str(home),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_AUTHOR_NAME": "Runbook Author",
        "GIT_AUTHOR_EMAIL": "author@example.com",
        "GIT_COMMITTER_NAME": "Runbook Author",
        "GIT_COMMITTER_EMAIL": "author@example.com",
    }


class GitRemote:
    """A bare repository (the remote) and a clone the test commits and pushes from."""

    def __init__(self, root: Path) -> None:
        need_binary("git")
        self.root = root
        self.env = git_env(root)
        self.projects = root / "served"
        self.bare = self.projects / "runbooks.git"
        self.work = root / "author"
        self._git("init", "--quiet", "--bare", "-b", "main", str(self.bare))
        self._git("init", "--quiet", "-b", "main", str(self.work))
        self.git("remote", "add", "origin", str(self.bare))

    @property
    def file_url(self) -> str:
        return self.bare.as_uri()

    def _git(self, *args: str, cwd: Path | None = None) -> str:
        done = subprocess.run(
            ["git", *args],
            cwd=cwd,
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, f"git {' '.join(args)}: {done.stderr}"
        return done.stdout.strip()

    def git(self, *args: str) -> str:
        """Run git in the author's clone."""
        return self._git(*args, cwd=self.work)

    def commit(
        self, files: dict[str, str | None], message: str = "change runbooks", *, push: bool = True
    ) -> str:
        """Write (or, for None, delete) files, commit, push to main; the new commit's id."""
        for name, text in files.items():
            path = self.work / name
            if text is None:
                path.unlink()
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text, encoding="utf-8")
        self.git("add", "--all")
        self.git("commit", "--quiet", "-m", message)
        if push:
            self.git("push", "--quiet", "origin", "HEAD:main")
        return self.git("rev-parse", "HEAD")


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class SmartHttpRemote:
    """``git http-backend`` over HTTP on 127.0.0.1, optionally behind basic auth."""

    def __init__(self, remote: GitRemote, *, user: str | None = None, token: str | None = None):
        self.remote = remote
        self.requests: list[str] = []
        self._expected = (
            None
            if token is None
            else "Basic " + base64.b64encode(f"{user}:{token}".encode()).decode()
        )
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/runbooks.git"

    def start(self) -> None:
        self._server = make_server("127.0.0.1", self.port, self._app, handler_class=_QuietHandler)
        self.port = self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """The remote goes down: connections are refused from now on."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def _app(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        self.requests.append(f"{environ['REQUEST_METHOD']} {environ.get('PATH_INFO', '')}")
        if self._expected is not None and environ.get("HTTP_AUTHORIZATION") != self._expected:
            start_response("401 Unauthorized", [("WWW-Authenticate", 'Basic realm="git"')])
            return [b"credentials needed\n"]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        cgi = {
            "PATH": os.environ.get("PATH", os.defpath),
            "GIT_PROJECT_ROOT": str(self.remote.projects),
            "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": environ.get("PATH_INFO", ""),
            "REQUEST_METHOD": environ["REQUEST_METHOD"],
            "QUERY_STRING": environ.get("QUERY_STRING", ""),
            "CONTENT_TYPE": environ.get("CONTENT_TYPE", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_ADDR": "127.0.0.1",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
        }
        if "HTTP_GIT_PROTOCOL" in environ:
            cgi["HTTP_GIT_PROTOCOL"] = environ["HTTP_GIT_PROTOCOL"]
        done = subprocess.run(
            ["git", "http-backend"], input=body, env=cgi, capture_output=True, check=False
        )
        head, _, payload = done.stdout.partition(b"\r\n\r\n")
        status = "200 OK"
        headers = []
        for line in head.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = value.strip()
            elif name:
                headers.append((name, value.strip()))
        start_response(status, headers)
        return [payload]
