"""A templated HTTP call, for control planes Ballast has no backend for.

The runbook author states the risk, since Ballast cannot know what an arbitrary call does;
it defaults to high. Secrets come from the environment (``${ENV_NAME}`` in headers), never
from the runbook, and are never logged.

Label values are hostile (they carry user text), so what a template puts in a call is kept in
its place: every ``{{ … }}`` in a URL is percent-encoded as one component (a ``/``, ``?``,
``#`` or ``..`` cannot change the path), every ``$`` a template puts in a header is doubled (a
label can never name a secret: only the runbook's literal text can), and at run time a URL with
a fragment or a dot segment, or a header with a character HTTP cannot carry, is refused
(``FinalError``, journaled) before anything is sent.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote, unquote, urlsplit

from pydantic import Field, field_validator

from actions.base import Action, ActionParams, Risk
from actions.context import ActionContext, ActionOutcome
from actions.errors import FinalError
from actions.http_errors import status_error, transport_error

if TYPE_CHECKING:  # imported when a call is sent: loading runbooks need not pay for httpx
    import httpx

_HEADER_TEXT = frozenset(chr(c) for c in range(0x20, 0x7F)) | {"\t"}


class HttpMethod(StrEnum):
    GET = "GET"
    POST = "POST"
    PUT = "PUT"
    PATCH = "PATCH"
    DELETE = "DELETE"


class HttpCall(ActionParams):
    method: HttpMethod = HttpMethod.POST
    url: str = Field(min_length=1, max_length=2000)
    headers: dict[str, str] = Field(default_factory=dict)
    json_body: Any = Field(default=None, alias="json")
    timeout_s: float = Field(default=10.0, gt=0, le=120)
    accept_redirects: bool = Field(
        default=False,
        description="Count a 3xx answer as success; otherwise it is a failure (never followed).",
    )

    @field_validator("url")
    @classmethod
    def _http_only(cls, url: str) -> str:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"url must start with http:// or https://, got {url!r}")
        return url


class HttpRequestParams(HttpCall):
    undo: HttpCall | None = None
    risk: Risk = Risk.HIGH


class HttpRequest(Action[HttpRequestParams]):
    name = "http_request"
    params_model: ClassVar[type[ActionParams]] = HttpRequestParams
    summary = "Send a templated HTTP request, with an optional request that undoes it."

    def risk(self, params: HttpRequestParams, current: str | None = None) -> Risk:
        return params.risk

    def reversible(self, params: HttpRequestParams) -> bool:
        return params.undo is not None

    def finalize_for(self, path: tuple[str, ...]) -> Callable[[Any], Any] | None:
        if path and path[-1] == "url":
            return encode_component
        if "headers" in path:
            return literal_dollars
        return None

    def describe(self, params: HttpRequestParams) -> str:
        undo = " (undo defined)" if params.undo else " (no undo)"
        return f"{params.method.value} {params.url}{undo}"

    async def apply(self, params: HttpRequestParams, ctx: ActionContext) -> ActionOutcome:
        ctx.http_policy.check_url(params.url)
        if params.undo is not None:
            ctx.http_policy.check_url(params.undo.url)
        if ctx.dry_run:
            return ActionOutcome(summary=f"dry run: would send {self.describe(params)}")
        response = await send(params, ctx)
        return ActionOutcome(
            summary=f"{params.method.value} {response['url']} → {response['status']}",
            response=response,
        )

    async def undo(
        self, params: HttpRequestParams, ctx: ActionContext, applied: ActionOutcome
    ) -> ActionOutcome:
        if params.undo is None:
            raise FinalError("this http_request has no `undo` request, so it cannot be undone")
        if ctx.dry_run:
            return ActionOutcome(
                summary=f"dry run: would send {params.undo.method.value} {params.undo.url}"
            )
        response = await send(params.undo, ctx)
        return ActionOutcome(
            summary=f"undo: {params.undo.method.value} {response['url']} → {response['status']}",
            response=response,
        )


async def send(call: HttpCall, ctx: ActionContext) -> dict[str, Any]:
    """Send one call; raise RetryableError for timeouts, 5xx and 429, FinalError for 4xx
    (and 3xx unless the call accepts redirects).

    Header values may name secrets as ``${ENV_NAME}``; they are expanded only here, at send
    time, and never appear in the outcome, the journal or an error message.
    """
    import httpx

    from actions.clients.http_policy import secret_names  # imports httpx

    ctx.http_policy.check_url(call.url)
    url = checked_url(call.url)
    headers = {name: ctx.http_policy.expand_secrets(value) for name, value in call.headers.items()}
    for name, value in headers.items():
        if not (name and set(name) <= _HEADER_TEXT and set(value) <= _HEADER_TEXT):
            raise FinalError(
                f"http_request header {_printable(name)} holds a character HTTP headers cannot "
                "carry (non-ASCII or a control character); not sent"
            )
    # Each secret on its own, so an echo of it anywhere in a response is redacted too.
    secrets = {
        ctx.http_policy.expand_secrets("${" + name + "}")
        for value in call.headers.values()
        for name in secret_names(value)
    } - {""}
    headers.setdefault("Idempotency-Key", ctx.idempotency_key)
    what = f"{call.method.value} {url}"
    try:
        response = await ctx.http.request(
            call.method.value,
            url,
            headers=headers,
            json=call.json_body,
            timeout=call.timeout_s,
            follow_redirects=False,
        )
    except httpx.TransportError as err:
        raise transport_error(what, err) from None
    error = status_error(
        what, response, lambda answer: _excerpt(answer, secrets), quote_retryable=False
    )
    if error is not None:
        raise error
    status = response.status_code
    if 300 <= status < 400 and not call.accept_redirects:
        where = response.headers.get("location", "")
        raise FinalError(
            f"{what} answered {status} (a redirect{' to ' + _printable(where) if where else ''}"
            "), not followed: the call was not applied; set `accept_redirects: true` in the "
            "runbook if a redirect means success"
        )
    return {"status": status, "url": url, "body": _excerpt(response, secrets)}


def encode_component(value: Any) -> str:
    """A template value inside a URL: one component, whatever it holds (``/?#&=.%`` too)."""
    return quote(str(value), safe="")


def literal_dollars(value: Any) -> str:
    """A template value inside a header: ``$`` doubled, so only literal text names a secret."""
    return str(value).replace("$", "$$")


def checked_url(url: str) -> str:
    """The URL exactly as it will be sent; refuse one whose path a render could have bent.

    Values are percent-encoded when rendered; this is the check at send time that nothing
    (a literal ``..``, an encoded ``%2e%2e``, a ``#``) moves the request elsewhere on the host.
    """
    import httpx

    parts = urlsplit(url)
    if parts.fragment or url.endswith("#"):
        raise FinalError("http_request url has a fragment (#…); it would cut the path: not sent")
    if any(unquote(segment) in (".", "..") for segment in parts.path.split("/")):
        raise FinalError(
            "http_request url has a `.` or `..` path segment, which would move the request to "
            "another path: not sent"
        )
    try:
        return str(httpx.URL(url))
    except (httpx.InvalidURL, ValueError):
        raise FinalError("http_request url is not a valid URL; check the runbook") from None


def _printable(text: str, limit: int = 100) -> str:
    return repr(text[:limit])


def _excerpt(response: httpx.Response, secrets: set[str], limit: int = 500) -> str:
    """The start of the response body, with any secret we sent replaced."""
    text = response.text
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "[redacted]")
    return text[:limit]
