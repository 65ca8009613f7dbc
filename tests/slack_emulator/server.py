"""A local Slack Web API: a real HTTP server on loopback that answers, records and rate-limits.

Routes, on ``http://127.0.0.1:<port>``:

- ``/api/<method>`` (GET or POST): the Web API. Arguments come from the query string and from a
  form-encoded or JSON body, as Slack accepts them (docs.slack.dev/apis/web-api). The token is
  ``Authorization: Bearer xoxb-…`` or, for form bodies, a ``token`` argument; JSON bodies must use
  the header. No token: ``not_authed``; a wrong one: ``invalid_auth``.
- ``/upload/v1/<file_id>`` (POST): the ``upload_url`` of files.getUploadURLExternal.
- ``/hooks/<kind>/<team>/<n>/<secret>`` (POST): ``response_url``s handed out by
  ``SlackEmulator.response_url()``; usable 5 times within 30 minutes
  (docs.slack.dev/interactivity/handling-user-interaction).

Point slack_sdk at it with ``AsyncWebClient(token="xoxb-…", base_url=emulator.base_url)``.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import socket
import threading
import time
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qsl, urlsplit

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from .limits import DEFAULT_LIMITS, Limit, RateLimiter, retry_after_header
from .payloads import DEFAULT_TEAM, SlackChannel, SlackTeam, SlackUser
from .recording import Call, CallLog, Match
from .workspace import Workspace

__all__ = ["DEFAULT_CHANNEL", "ResponseUrlPost", "SlackEmulator"]

DEFAULT_CHANNEL = SlackChannel("C0INCIDENT", "incidents")
JSON_FIELDS = ("blocks", "attachments", "files")
RESPONSE_URL_USES = 5
RESPONSE_URL_TTL = 30 * 60


@dataclass(frozen=True)
class ResponseUrlPost:
    """One POST to a ``response_url``."""

    url: str
    body: Mapping[str, Any]
    at: float
    status: int


@dataclass
class _Injected:
    error: str
    status: int
    retry_after: int | None
    remaining: int


class SlackEmulator:
    """The emulated workspace plus its server; use as a (sync) context manager.

    ``time_scale`` divides every rate-limit window and the response_url lifetime
    (``time_scale=60``: Tier 2 becomes 20 calls per second). ``tokens`` limits the accepted bot
    tokens; by default any ``xoxb-`` token works.
    """

    def __init__(
        self,
        *,
        team: SlackTeam = DEFAULT_TEAM,
        channels: Iterable[SlackChannel] = (DEFAULT_CHANNEL,),
        users: Iterable[SlackUser] = (),
        usergroups: Mapping[str, Iterable[str]] | None = None,
        tokens: Collection[str] | None = None,
        limits: Mapping[str, Limit | None] | None = None,
        time_scale: float = 1.0,
        truncate_long_text: bool = False,
        host: str = "127.0.0.1",
    ) -> None:
        self.team = team
        self.tokens = None if tokens is None else frozenset(tokens)
        self.time_scale = time_scale
        self.limiter = RateLimiter({**DEFAULT_LIMITS, **(limits or {})}, time_scale=time_scale)
        self.log = CallLog()
        self._setup = (tuple(channels), tuple(users), dict(usergroups or {}), truncate_long_text)
        self._lock = threading.RLock()
        self.workspace = self._new_workspace()
        self._injected: dict[str, list[_Injected]] = {}
        self._hooks: dict[str, tuple[float, int]] = {}
        self._hook_posts: list[ResponseUrlPost] = []
        self._host = host
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def root_url(self) -> str:
        return f"http://{self._host}:{self.port}"

    @property
    def base_url(self) -> str:
        """For ``AsyncWebClient(base_url=...)``; ends with a slash like Slack's own."""
        return f"{self.root_url}/api/"

    def start(self) -> Self:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind((self._host, 0))
        self.port = sock.getsockname()[1]
        self.workspace.upload_root = self.root_url
        config = uvicorn.Config(
            self._app(), lifespan="off", log_level="warning", access_log=False, ws="none"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, daemon=True, name="slack-emu"
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the Slack emulator did not start on {self.root_url}")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
        self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def reset(self) -> None:
        """Forget calls, messages, created channels, uploads and rate-limit windows."""
        with self._lock:
            self.log.reset()
            self.limiter.reset()
            self.workspace = self._new_workspace()
            self.workspace.upload_root = self.root_url
            self._injected.clear()
            self._hooks.clear()
            self._hook_posts.clear()

    def _new_workspace(self) -> Workspace:
        channels, users, usergroups, truncate = self._setup
        return Workspace(
            team=self.team,
            channels=channels,
            users=users,
            usergroups=usergroups,
            truncate_long_text=truncate,
        )

    # -- arranging ------------------------------------------------------------------------

    def add_user(self, user: SlackUser) -> None:
        with self._lock:
            self.workspace.add_user(user)

    def add_channel(self, channel: SlackChannel) -> None:
        with self._lock:
            self.workspace.add_channel(channel)

    def set_usergroup(self, usergroup: str, user_ids: Iterable[str]) -> None:
        with self._lock:
            self.workspace.usergroups[usergroup] = list(user_ids)

    def post_as(self, user_id: str, channel: str, text: str) -> str:
        """Seed a message by a person (the bot gets ``cant_update_message`` for it)."""
        with self._lock:
            return self.workspace.post_as(user_id, channel, text)

    def fail_next(
        self,
        method: str,
        error: str = "internal_error",
        *,
        status: int = 200,
        retry_after: int | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` calls of ``method`` with ``error``, changing nothing."""
        with self._lock:
            self._injected.setdefault(method, []).append(
                _Injected(error, status, retry_after, times)
            )

    def recover(self) -> int:
        """Drop the failures arranged with :meth:`fail_next` that no call has met yet: Slack
        is healthy again. Returns how many calls would still have failed."""
        with self._lock:
            left = sum(i.remaining for queue in self._injected.values() for i in queue)
            self._injected.clear()
            return left

    # -- asserting ------------------------------------------------------------------------

    def calls(
        self, method: str | None = None, channel: str | None = None, *, ok: bool | None = None
    ) -> list[Call]:
        return self.log.calls(method, channel, ok=ok)

    def count(
        self, method: str | None = None, channel: str | None = None, *, ok: bool | None = None
    ) -> int:
        return len(self.log.calls(method, channel, ok=ok))

    def rejected(self, method: str | None = None, channel: str | None = None) -> list[Call]:
        """Calls Slack refused, for any reason (rate limit included)."""
        return self.log.calls(method, channel, ok=False)

    def rate_limited(self, method: str | None = None, channel: str | None = None) -> list[Call]:
        return self.log.rate_limited(method, channel)

    def unretried_rate_limits(self, match: Match = "request") -> list[Call]:
        return self.log.unretried_rate_limits(match)

    def premature_retries(self, match: Match = "request") -> list[tuple[Call, Call]]:
        return self.log.premature_retries(match)

    def _channel_id(self, ref: str) -> str:
        channel_id = self.workspace.channel_key({"channel": ref}) or ""
        if channel_id not in self.workspace.channels:
            raise KeyError(f"no channel {ref!r}; known: {sorted(self.workspace.channels)}")
        return channel_id

    def messages(self, channel: str, thread_ts: str | None = None) -> list[dict[str, Any]]:
        """Top-level messages (each with its ``replies``), or the replies of ``thread_ts``."""
        with self._lock:
            stored = self.workspace.messages[self._channel_id(channel)].values()
            ordered = sorted(stored, key=lambda m: m.ts)
        if thread_ts is not None:
            return [m.snapshot() for m in ordered if m.thread_ts == thread_ts != m.ts]
        return [
            {
                **m.snapshot(),
                "replies": [r.snapshot() for r in ordered if r.thread_ts == m.ts != r.ts],
            }
            for m in ordered
            if m.thread_ts in (None, m.ts)
        ]

    def message(self, channel: str, ts: str) -> dict[str, Any]:
        """One message as it stands now (``edits``: how many times it was updated)."""
        with self._lock:
            return self.workspace.messages[self._channel_id(channel)][ts].snapshot()

    def ephemerals(
        self, channel: str | None = None, user: str | None = None
    ) -> list[dict[str, Any]]:
        with self._lock:
            return [
                dict(e)
                for e in self.workspace.ephemerals
                if channel in (None, e["channel"]) and user in (None, e["user"])
            ]

    def channel(self, ref: str) -> dict[str, Any]:
        """A channel by ID or name, with ``members`` (``None``: everyone)."""
        with self._lock:
            channel = self.workspace.channels[self._channel_id(ref)]
            members = None if channel.members is None else sorted(channel.members)
            return {**channel.object(self.team), "members": members}

    def uploads(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(f) for f in self.workspace.files.values()]

    # -- response_url ---------------------------------------------------------------------

    def response_url(self, kind: str = "commands") -> str:
        """A fresh ``response_url`` served by this emulator (kind: ``commands`` or ``actions``)."""
        with self._lock:
            number = len(self._hooks) + 1
            path = f"/hooks/{kind}/{self.team.id}/{number}/{secrets.token_urlsafe(12)}"
            self._hooks[path] = (time.monotonic(), 0)
        return self.root_url + path

    def response_posts(self, url: str | None = None) -> list[ResponseUrlPost]:
        with self._lock:
            return [p for p in self._hook_posts if url in (None, p.url)]

    # -- HTTP -----------------------------------------------------------------------------

    def _app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/api/{method}", self._web_api, methods=["GET", "POST"]),
                Route("/upload/v1/{file_id}", self._upload, methods=["POST"]),
                Route("/hooks/{rest:path}", self._hook, methods=["POST"]),
            ]
        )

    async def _web_api(self, request: Request) -> Response:
        method = request.path_params["method"]
        args, token, error = await _read_call(request)
        if error is None:
            error = self._auth_error(token)
        with self._lock:
            channel = self.workspace.channel_key(args)
            status, body, retry_after, injected = 200, None, None, False
            if error is not None:
                body = {"ok": False, "error": error}
            elif self._injected.get(method):
                body, status, retry_after = self._take_injected(method)
                injected = True
            else:
                wait = self.limiter.acquire(method, channel)
                if wait is not None:
                    status, retry_after = 429, wait
                    body = {"ok": False, "error": "ratelimited"}
                else:
                    body = self.workspace.handle(method, args)
            self.log.append(
                method=method,
                args=args,
                channel=channel,
                at=time.time(),
                monotonic=time.monotonic(),
                status=status,
                response=body,
                retry_after=retry_after,
                injected=injected,
            )
        headers = {} if retry_after is None else {"Retry-After": retry_after_header(retry_after)}
        return JSONResponse(body, status_code=status, headers=headers)

    def _auth_error(self, token: str | None) -> str | None:
        if not token:
            return "not_authed"
        if self.tokens is not None:
            return None if token in self.tokens else "invalid_auth"
        return None if token.startswith("xoxb-") else "invalid_auth"

    def _take_injected(self, method: str) -> tuple[dict[str, Any], int, float | None]:
        injected = self._injected[method][0]
        injected.remaining -= 1
        if injected.remaining <= 0:
            self._injected[method].pop(0)
        retry_after = None if injected.retry_after is None else float(injected.retry_after)
        return {"ok": False, "error": injected.error}, injected.status, retry_after

    async def _upload(self, request: Request) -> Response:
        data = await request.body()
        with self._lock:
            known = self.workspace.receive_upload(request.path_params["file_id"], data)
        if not known:
            return PlainTextResponse("Not Found", status_code=404)
        return PlainTextResponse(f"OK - {len(data)}")

    async def _hook(self, request: Request) -> Response:
        path = urlsplit(str(request.url)).path
        raw = await request.body()
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {"_raw": raw.decode(errors="replace")}
        with self._lock:
            issued = self._hooks.get(path)
            if issued is None:
                status, answer = 404, {"ok": False, "error": "invalid_url"}
            elif time.monotonic() - issued[0] > RESPONSE_URL_TTL / self.time_scale:
                status, answer = 404, {"ok": False, "error": "expired_url"}
            elif issued[1] >= RESPONSE_URL_USES:
                status, answer = 404, {"ok": False, "error": "used_url"}
            else:
                self._hooks[path] = (issued[0], issued[1] + 1)
                status, answer = 200, {"ok": True}
            self._hook_posts.append(
                ResponseUrlPost(self.root_url + path, body, time.time(), status)
            )
        return JSONResponse(answer, status_code=status)


async def _read_call(request: Request) -> tuple[dict[str, Any], str | None, str | None]:
    """``(args, token, error)`` from query string and body, the way Slack reads them."""
    args: dict[str, Any] = dict(request.query_params)
    header = request.headers.get("authorization", "")
    token = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else None
    raw = await request.body()
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    error = None
    if raw and not content_type:
        error = "missing_post_type"
    elif raw and content_type == "application/json":
        try:
            decoded = json.loads(raw)
        except ValueError:
            decoded = None
        if isinstance(decoded, dict):
            args.update(decoded)
        else:
            error = "invalid_json"
    elif raw and content_type == "application/x-www-form-urlencoded":
        args.update(parse_qsl(raw.decode(), keep_blank_values=True))
        token = token or args.get("token")
    elif raw:
        error = "invalid_post_type"  # multipart and text/plain are not emulated
    if request.method == "GET":
        token = token or args.get("token")
    args.pop("token", None)
    for name in JSON_FIELDS:
        if isinstance(args.get(name), str):
            # left as sent when it is not JSON: the method answers invalid_blocks_format
            with contextlib.suppress(ValueError):
                args[name] = json.loads(args[name])
    return args, token, error
