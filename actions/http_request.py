"""A templated HTTP call, for control planes Ballast has no backend for.

The runbook author states the risk, since Ballast cannot know what an arbitrary call does;
it defaults to high. Secrets come from the environment (``${ENV_NAME}`` in headers), never
from the runbook, and are never logged.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, ClassVar

from pydantic import Field, field_validator

from actions.base import Action, ActionParams, Risk


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
