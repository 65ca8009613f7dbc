"""Talking to a running server's JSON API, as ``amtool`` and ``kubectl`` do.

Acknowledge, resolve, run and undo go through the server, so the runbook's policy (owners,
approvals), the audit trail and Slack updates are exactly those of the API and Slack.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from bot.cli.output import fail

DEFAULT_URL = "http://127.0.0.1:8080"

UrlOption = Annotated[
    str,
    typer.Option(
        "--url", metavar="URL", envvar="BALLAST_URL", help="The Ballast server to talk to."
    ),
]
ActorOption = Annotated[
    str | None,
    typer.Option(
        "--actor",
        metavar="NAME",
        envvar="BALLAST_ACTOR",
        show_default=False,
        help="Act for this person (a Slack user id); only a token with the impersonate role "
        "may. Left out, the token's own principal acts.",
    ),
]
ReasonOption = Annotated[
    str, typer.Option("--reason", metavar="TEXT", help="Why (recorded in the timeline).")
]
TokenOption = Annotated[
    str | None,
    typer.Option(
        "--token",
        metavar="TOKEN",
        envvar="BALLAST_API_TOKEN",
        show_default=False,
        help="Your named token (ballast tokens create), or the server's BALLAST_API_TOKEN "
        "(or BALLAST_API_TOKEN_FILE: a file that holds it).",
    ),
]


class Client:
    """A few JSON calls; every failure ends the command with the server's own message."""

    def __init__(self, url: str, token: str | None) -> None:
        self.url = url.rstrip("/")
        self.token = token if token is not None else _token_from_file()

    def get(self, path: str) -> Any:
        return self._call("GET", path, None)

    def post(self, path: str, body: dict[str, Any]) -> Any:
        return self._call("POST", path, body)

    def _call(self, method: str, path: str, body: dict[str, Any] | None) -> Any:
        import httpx

        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            response = httpx.request(
                method, self.url + path, json=body, headers=headers, timeout=30
            )
        except httpx.ConnectError:
            fail(
                f"cannot connect to Ballast at {self.url}: is `ballast serve` running there? "
                "Point --url or BALLAST_URL at the server"
            )
        except httpx.HTTPError as err:
            fail(f"{method} {self.url}{path} failed: {err}")
        if response.status_code >= 400:
            fail(self._explain(response.status_code, response.text))
        try:
            return response.json()
        except json.JSONDecodeError:
            fail(f"{self.url}{path} did not answer JSON; is --url a Ballast server?")

    def _explain(self, status: int, text: str) -> str:
        try:
            detail = json.loads(text).get("detail", text)
        except (json.JSONDecodeError, AttributeError):
            detail = text.strip() or "(no message)"
        if isinstance(detail, list):  # FastAPI's validation errors
            detail = "; ".join(
                f"{'.'.join(str(p) for p in e.get('loc', [])[1:])}: {e.get('msg')}" for e in detail
            )
        hint = ""
        if status == 401 and not self.token:
            hint = " (no token sent: set BALLAST_API_TOKEN or pass --token)"
        return f"server answered {status}: {detail}{hint}"


def _token_from_file() -> str | None:
    path = os.environ.get("BALLAST_API_TOKEN_FILE")
    if not path:
        return None
    try:
        return Path(path).read_text(encoding="utf-8").removesuffix("\n")
    except OSError as err:
        fail(f"BALLAST_API_TOKEN_FILE={path}: cannot read the file: {err.strerror}")
