"""A templated HTTP call, for control planes Ballast has no backend for.

The runbook author states the risk, since Ballast cannot know what an arbitrary call does;
it defaults to high. Secrets come from the environment (``${ENV_NAME}`` in headers), never
from the runbook, and are never logged.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field, field_validator

from actions.base import Action, ActionParams, Risk
from actions.context import ActionContext, ActionOutcome
from actions.errors import FinalError
from actions.http_errors import status_error, transport_error

if TYPE_CHECKING:  # imported when a call is sent: loading runbooks need not pay for httpx
    import httpx

# A ${NAME} reference not escaped as $${NAME} (see actions.clients.http_policy).
_SECRET_REF = re.compile(r"(?<!\$)\$\{[A-Za-z_][A-Za-z0-9_]*\}")


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
            summary=f"{params.method.value} {params.url} → {response['status']}",
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
            summary=f"undo: {params.undo.method.value} {params.undo.url} → {response['status']}",
            response=response,
        )


async def send(call: HttpCall, ctx: ActionContext) -> dict[str, Any]:
    """Send one call; raise RetryableError for timeouts, 5xx and 429, FinalError for 4xx.

    Header values may name secrets as ``${ENV_NAME}``; they are expanded only here, at send
    time, and never appear in the outcome, the journal or an error message.
    """
    import httpx

    ctx.http_policy.check_url(call.url)
    headers = {name: ctx.http_policy.expand_secrets(value) for name, value in call.headers.items()}
    # Each secret on its own, so an echo of it anywhere in a response is redacted too.
    secrets = {
        ctx.http_policy.expand_secrets(ref.group(0))
        for value in call.headers.values()
        for ref in _SECRET_REF.finditer(value)
    } - {""}
    headers.setdefault("Idempotency-Key", ctx.idempotency_key)
    try:
        response = await ctx.http.request(
            call.method.value,
            call.url,
            headers=headers,
            json=call.json_body,
            timeout=call.timeout_s,
        )
    except httpx.TransportError as err:
        raise transport_error(f"{call.method.value} {call.url}", err) from None
    error = status_error(
        f"{call.method.value} {call.url}",
        response,
        lambda answer: _excerpt(answer, secrets),
        quote_retryable=False,
    )
    if error is not None:
        raise error
    status = response.status_code
    return {"status": status, "body": _excerpt(response, secrets)}


def _excerpt(response: httpx.Response, secrets: set[str], limit: int = 500) -> str:
    """The start of the response body, with any secret we sent replaced."""
    text = response.text
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "[redacted]")
    return text[:limit]
