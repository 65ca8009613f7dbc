"""Paging a human: PagerDuty Events API v2 and the Opsgenie alert API, over httpx.

Runbooks name a target (``page: {target: checkout-oncall}``); ballast.yaml maps the name to a
provider and the *name* of the environment variable holding its key, so keys never sit in a
file. Both providers deduplicate on our key (PagerDuty ``dedup_key``, Opsgenie ``alias``), so
a retried page never wakes anyone twice. Timeouts, 5xx and 429 are ``RetryableError``; any
other 4xx is ``FinalError`` quoting the provider, with every secret scrubbed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator

from actions.builtin.page import PageSeverity
from actions.errors import FinalError
from actions.http_errors import status_error, transport_error

ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"

# Opsgenie's P1..P5 from PagerDuty's severities (which are also ours).
OPSGENIE_PRIORITY = {
    PageSeverity.CRITICAL: "P1",
    PageSeverity.ERROR: "P2",
    PageSeverity.WARNING: "P3",
    PageSeverity.INFO: "P5",
}
_RESPONDER_TYPES = frozenset({"team", "user", "escalation", "schedule"})


class PagerDutyTarget(BaseModel):
    """A PagerDuty service, reached through its Events API v2 integration key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["pagerduty"]
    routing_key_env: str = Field(
        pattern=ENV_NAME_PATTERN, description="Env var holding the integration (routing) key."
    )
    api_url: str = Field(default="https://events.pagerduty.com", pattern=r"^https?://")
    source: str = Field(default="ballast", min_length=1, max_length=255)
    timeout_s: float = Field(default=10.0, gt=0, le=60)


class OpsgenieTarget(BaseModel):
    """An Opsgenie team (or user, schedule, escalation), reached with an API integration key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["opsgenie"]
    api_key_env: str = Field(pattern=ENV_NAME_PATTERN, description="Env var holding the key.")
    responders: list[dict[str, str]] = Field(default_factory=list)
    api_url: str = Field(
        default="https://api.opsgenie.com",
        pattern=r"^https?://",
        description="https://api.eu.opsgenie.com for EU accounts.",
    )
    source: str = Field(default="ballast", min_length=1, max_length=100)
    timeout_s: float = Field(default=10.0, gt=0, le=60)

    @field_validator("responders")
    @classmethod
    def _responders_are_addressable(cls, responders: list[dict[str, str]]) -> list[dict[str, str]]:
        for responder in responders:
            kind = responder.get("type")
            if kind not in _RESPONDER_TYPES:
                raise ValueError(
                    f"responder type must be one of {sorted(_RESPONDER_TYPES)}, got {kind!r}"
                )
            if not ({"id", "name", "username"} & responder.keys()):
                raise ValueError(f"responder {responder} needs an `id`, `name` or `username`")
        return responders


PagingTarget = Annotated[PagerDutyTarget | OpsgenieTarget, Field(discriminator="type")]


class HttpPager:
    """``Pager`` that sends each page to the provider of the named target."""

    def __init__(
        self,
        targets: Mapping[str, PagingTarget],
        http: httpx.AsyncClient,
        environ: Mapping[str, str],
    ) -> None:
        self._targets = dict(targets)
        self._http = http
        self._environ = environ

    def missing_secrets(self) -> list[str]:
        """Env vars the configured targets need but that are unset (for a startup check)."""
        names = [
            t.routing_key_env if isinstance(t, PagerDutyTarget) else t.api_key_env
            for t in self._targets.values()
        ]
        return sorted({name for name in names if not self._environ.get(name)})

    async def page(
        self, target: str, summary: str, severity: str, *, dedup_key: str
    ) -> dict[str, Any]:
        config = self._targets.get(target)
        if config is None:
            known = ", ".join(sorted(self._targets)) or "(none)"
            raise FinalError(
                f"paging target {target!r} is not configured; add it under `paging.targets` "
                f"in ballast.yaml (configured: {known})"
            )
        try:
            level = PageSeverity(severity)
        except ValueError:
            allowed = ", ".join(s.value for s in PageSeverity)
            raise FinalError(f"page severity {severity!r} is not one of {allowed}") from None
        if isinstance(config, PagerDutyTarget):
            return await self._pagerduty(target, config, summary, level, dedup_key)
        return await self._opsgenie(target, config, summary, level, dedup_key)

    async def _pagerduty(
        self,
        name: str,
        config: PagerDutyTarget,
        summary: str,
        severity: PageSeverity,
        dedup_key: str,
    ) -> dict[str, Any]:
        routing_key = self._secret(name, config.routing_key_env)
        body = {
            "routing_key": routing_key,
            "event_action": "trigger",
            "dedup_key": _bounded(dedup_key, 255),
            "payload": {
                "summary": summary[:1024],
                "source": config.source,
                "severity": severity.value,
            },
        }
        url = config.api_url.rstrip("/") + "/v2/enqueue"
        answer = await self._post(
            f"PagerDuty ({name})", url, body, {}, config.timeout_s, secret=routing_key
        )
        return {
            "provider": "pagerduty",
            "target": name,
            "status": answer["status"],
            "dedup_key": answer["body"].get("dedup_key", body["dedup_key"]),
            "message": answer["body"].get("message"),
        }

    async def _opsgenie(
        self,
        name: str,
        config: OpsgenieTarget,
        summary: str,
        severity: PageSeverity,
        dedup_key: str,
    ) -> dict[str, Any]:
        api_key = self._secret(name, config.api_key_env)
        body: dict[str, Any] = {
            "message": summary[:130],
            "alias": _bounded(dedup_key, 512),
            "description": summary[:15000],
            "priority": OPSGENIE_PRIORITY[severity],
            "source": config.source,
        }
        if config.responders:
            body["responders"] = config.responders
        url = config.api_url.rstrip("/") + "/v2/alerts"
        headers = {"Authorization": f"GenieKey {api_key}"}
        answer = await self._post(
            f"Opsgenie ({name})", url, body, headers, config.timeout_s, secret=api_key
        )
        return {
            "provider": "opsgenie",
            "target": name,
            "status": answer["status"],
            "alias": body["alias"],
            "request_id": answer["body"].get("requestId"),
        }

    def _secret(self, target: str, env_name: str) -> str:
        value = self._environ.get(env_name)
        if not value:
            raise FinalError(
                f"paging target {target!r} needs its key in the environment variable "
                f"{env_name}, which is not set"
            )
        return value

    async def _post(
        self,
        what: str,
        url: str,
        body: dict[str, Any],
        headers: dict[str, str],
        timeout_s: float,
        *,
        secret: str,
    ) -> dict[str, Any]:
        try:
            response = await self._http.post(url, json=body, headers=headers, timeout=timeout_s)
        except httpx.TransportError as err:
            raise transport_error(
                what, err, timeout_s=timeout_s, unreachable="unreachable"
            ) from None
        error = status_error(what, response, lambda answer: _provider_message(answer, secret))
        if error is not None:
            raise error
        status = response.status_code
        try:
            parsed = response.json()
        except ValueError:
            parsed = {}
        return {"status": status, "body": parsed if isinstance(parsed, dict) else {}}


def _bounded(key: str, limit: int) -> str:
    """Keep a dedup key within the provider's limit, still deterministic (same key, same id)."""
    if len(key) <= limit:
        return key
    return hashlib.sha256(key.encode()).hexdigest()


def _provider_message(response: httpx.Response, secret: str) -> str:
    """The provider's own words (PagerDuty ``message``/``errors``, Opsgenie ``message``)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        parts = [str(body.get("message") or body.get("status") or "")]
        errors = body.get("errors")
        if isinstance(errors, list):
            parts.extend(str(e) for e in errors)
        elif isinstance(errors, dict):
            parts.extend(f"{k}: {v}" for k, v in errors.items())
        text = "; ".join(p for p in parts if p)
    else:
        text = response.text[:300]
    return _redact(text or "(no message)", secret)


def _redact(text: str, *secrets: str) -> str:
    """Scrub secret values from text that came back from a server, in case it echoes them."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return text
