"""Unleash as a control plane, through its Admin API (checked against unleash-server 8.2).

Ballast keys are Unleash feature names as they are: ``[a-z0-9._-]`` is URL-friendly, which is
all Unleash asks of a name besides 1-100 characters and not ``.`` or ``..``.

* Tool switches (``<service>.tools.<tool>.enabled``) toggle the feature in one environment.
  For features listed in ``kill_switch_keys`` *on* means killed, so Ballast's ``true`` is
  Unleash's off.
* String controls (model, autonomy, prompt version, retrieval index, human review) are the
  payload of the single variant of the feature's one strategy in that environment (set by
  replacing the whole strategy; environment-level variants are deprecated and answer 403).

Every write reads the feature back and records the id of the Unleash event it caused. A
missing feature is created. The admin token comes from the environment variable the config
names and is sent as ``Authorization: <token>``; it never reaches a log line or an error.
Timeouts, 429 and 5xx are ``RetryableError``; other 4xx are ``FinalError`` quoting Unleash.
"""

from __future__ import annotations

import asyncio
import os
import weakref
from collections.abc import Mapping
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator

from actions.backends.base import ControlBackend, FlagValue, WriteResult
from actions.backends.value_type import check_value, expected_type, is_bool_key
from actions.errors import FinalError
from actions.http_errors import status_error, transport_error

_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]] = (
    weakref.WeakKeyDictionary()
)
_STRATEGY_FIELDS = ("name", "title", "disabled", "constraints", "parameters", "segments")
_URL_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~")


class UnleashConfig(BaseModel):
    """``backend: {type: unleash, ...}`` in ballast.yaml."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(pattern=r"^https?://", description="Unleash base URL, without /api.")
    project: str = Field(default="default", min_length=1)
    environment: str = Field(default="development", min_length=1)
    token_env: str = Field(
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="Name of the env var holding an admin API token (or a bot user's PAT).",
    )
    kill_switch_keys: list[str] = Field(
        default_factory=list,
        description="Tool-switch keys whose Unleash feature being on means the tool is killed.",
    )
    timeout_s: float = Field(default=10.0, gt=0, le=60)

    @field_validator("url")
    @classmethod
    def _base_url(cls, url: str) -> str:
        url = url.rstrip("/")
        return url.removesuffix("/api")

    @field_validator("kill_switch_keys")
    @classmethod
    def _tool_switches(cls, keys: list[str]) -> list[str]:
        for key in keys:
            if expected_type(key) is not bool:
                raise ValueError(
                    f"kill_switch_keys entry {key!r} is not a tool switch "
                    "(<service>.tools.<tool>.enabled)"
                )
        return keys


class UnleashBackend(ControlBackend):
    """Controls kept as Unleash features in one project and environment."""

    name = "unleash"

    def __init__(
        self,
        config: UnleashConfig,
        http: httpx.AsyncClient,
        *,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.config = config
        self._http = http
        self._environ = os.environ if environ is None else environ
        self._kill_switches = frozenset(config.kill_switch_keys)

    # -- the ControlBackend interface ------------------------------------------------------

    async def read(self, key: str) -> FlagValue | None:
        feature = await self._feature(_feature_name(key))
        if feature is None:
            return None
        return self._value(key, self._environment(feature))

    async def write(self, key: str, value: FlagValue, *, actor: str, reason: str) -> WriteResult:
        check_value(key, value)
        name = _feature_name(key)
        async with self._lock(name):
            feature = await self._feature(name)
            created = feature is None
            last_event = await self._newest_event_id(name)
            if feature is None:
                feature = await self._create(key, name)
            environment = self._environment(feature)
            before = None if created else self._value(key, environment)
            if is_bool_key(key, value):
                changed = await self._toggle(key, name, environment, bool(value))
            else:
                changed = await self._set_variant(key, name, environment, str(value))
            after = self._value(key, self._environment(await self._require_feature(name)))
            if after is None or type(after) is not type(value) or after != value:
                raise FinalError(
                    f"Unleash feature {name}: set to {value!r} but read back {after!r}; "
                    "someone may be changing it at the same time"
                )
            events = await self._events_since(name, last_event) if changed or created else []
        return WriteResult(
            key, before, after, self._response(name, events, unchanged=not changed, created=created)
        )

    async def clear(self, key: str, *, actor: str, reason: str) -> WriteResult:
        """Make SDKs in this environment answer as if the feature did not exist.

        The undo of a change to a key that had no value. Only this environment changes: it is
        switched off (and a string control's variants removed), so ``is_enabled`` is false and
        ``get_variant`` gives the "disabled" variant, as for a missing feature. The feature
        itself stays, since other environments may use it; a tool switch therefore reads back
        as what an SDK returns for a missing feature (off, or not killed for a kill switch).
        """
        name = _feature_name(key)
        async with self._lock(name):
            feature = await self._feature(name)
            if feature is None:
                return WriteResult(key, None, None, self._response(name, [], unchanged=True))
            environment = self._environment(feature)
            before = self._value(key, environment)
            last_event = await self._newest_event_id(name)
            changed = False
            strategy = None if is_bool_key(key) else self._strategy(key, environment)
            if strategy is not None and strategy.get("variants"):
                body = {f: strategy[f] for f in _STRATEGY_FIELDS if f in strategy}
                body["variants"] = []
                path = f"{self._env_path(name)}/strategies/{strategy['id']}"
                await self._request("PUT", path, json=body)
                changed = True
            if environment.get("enabled"):
                await self._request("POST", f"{self._env_path(name)}/off")
                changed = True
            after = self._value(key, self._environment(await self._require_feature(name)))
            events = await self._events_since(name, last_event) if changed else []
        return WriteResult(key, before, after, self._response(name, events, unchanged=not changed))

    def _response(
        self, name: str, events: list[dict[str, Any]], *, unchanged: bool, created: bool = False
    ) -> dict[str, Any]:
        """What Unleash did, for the journal: where, and the ids of the events it recorded."""
        return {
            "project": self.config.project,
            "environment": self.config.environment,
            "feature": name,
            "created_feature": created,
            "unchanged": unchanged,
            "event_id": events[-1]["id"] if events else None,
            "event_ids": [e["id"] for e in events],
            "event_types": [e.get("type") for e in events],
        }

    # -- reading ---------------------------------------------------------------------------

    def _value(self, key: str, environment: dict[str, Any]) -> FlagValue | None:
        """What an SDK reading this environment gets, in Ballast's terms."""
        enabled = bool(environment.get("enabled"))
        if is_bool_key(key):
            return (not enabled) if key in self._kill_switches else enabled
        if not enabled:
            return None  # SDKs get the "disabled" variant: the app falls back to its default.
        strategy = self._strategy(key, environment)
        if strategy is None:
            return None
        variants = strategy.get("variants") or []
        if not variants:
            return None
        if len(variants) > 1:
            names = ", ".join(str(v.get("name")) for v in variants)
            raise FinalError(
                f"Unleash feature {key} splits traffic between {len(variants)} variants "
                f"({names}) in {self.config.environment}; Ballast sets one value and could "
                "not restore a split on undo. Reduce it to one variant in Unleash first"
            )
        payload = variants[0].get("payload") or {}
        value = payload.get("value", variants[0].get("name"))
        return str(value)

    def _strategy(self, key: str, environment: dict[str, Any]) -> dict[str, Any] | None:
        active = [s for s in environment.get("strategies") or [] if not s.get("disabled")]
        if len(active) > 1:
            raise FinalError(
                f"Unleash feature {key} has {len(active)} active strategies in "
                f"{self.config.environment}; Ballast sets variants on exactly one. Merge them "
                "or disable the extra strategies in Unleash"
            )
        return active[0] if active else None

    def _environment(self, feature: dict[str, Any]) -> dict[str, Any]:
        for environment in feature.get("environments") or []:
            if environment.get("name") == self.config.environment:
                return dict(environment)
        raise FinalError(
            f"Unleash feature {feature.get('name')} has no environment "
            f"{self.config.environment!r} in project {self.config.project!r}; check "
            "`environment` in ballast.yaml or enable the environment for the project"
        )

    # -- writing ---------------------------------------------------------------------------

    async def _toggle(self, key: str, name: str, environment: dict[str, Any], value: bool) -> bool:
        want_on = (not value) if key in self._kill_switches else value
        if bool(environment.get("enabled")) == want_on:
            return False
        await self._request("POST", f"{self._env_path(name)}/{'on' if want_on else 'off'}")
        return True

    async def _set_variant(
        self, key: str, name: str, environment: dict[str, Any], value: str
    ) -> bool:
        variant = {
            "name": _variant_name(value),
            "weight": 1000,
            "weightType": "variable",
            "stickiness": "default",
            "payload": {"type": "string", "value": value},
        }
        strategy = self._strategy(key, environment)
        current = self._value(key, environment)
        changed = False
        if strategy is None:
            body = {
                "name": "flexibleRollout",
                "parameters": {"rollout": "100", "stickiness": "default", "groupId": name},
                "constraints": [],
                "variants": [variant],
            }
            await self._request("POST", f"{self._env_path(name)}/strategies", json=body)
            changed = True
        elif current != value:
            body = {f: strategy[f] for f in _STRATEGY_FIELDS if f in strategy}
            body["variants"] = [variant]
            await self._request(
                "PUT", f"{self._env_path(name)}/strategies/{strategy['id']}", json=body
            )
            changed = True
        if not environment.get("enabled"):
            await self._request("POST", f"{self._env_path(name)}/on")
            changed = True
        return changed

    async def _create(self, key: str, name: str) -> dict[str, Any]:
        kind = "kill-switch" if key in self._kill_switches else "operational"
        body = {"name": name, "type": kind, "description": f"Ballast control {key}"}
        await self._request("POST", f"{self._project_path()}/features", json=body)
        return await self._require_feature(name)

    # -- Admin API -------------------------------------------------------------------------

    async def _feature(self, name: str) -> dict[str, Any] | None:
        response = await self._request("GET", f"{self._project_path()}/features/{name}", ok=404)
        return None if response.status_code == 404 else _json_object(response)

    async def _require_feature(self, name: str) -> dict[str, Any]:
        feature = await self._feature(name)
        if feature is None:
            raise FinalError(f"Unleash feature {name} disappeared while Ballast was changing it")
        return feature

    async def _events(self, name: str) -> list[dict[str, Any]]:
        response = await self._request("GET", f"/api/admin/events/{name}")
        events = _json_object(response).get("events") or []
        return [e for e in events if isinstance(e, dict) and isinstance(e.get("id"), int)]

    async def _newest_event_id(self, name: str) -> int:
        return max((e["id"] for e in await self._events(name)), default=0)

    async def _events_since(self, name: str, last: int) -> list[dict[str, Any]]:
        """Events on this feature newer than ``last``, oldest first (ours, barring a race)."""
        env = self.config.environment
        fresh = [
            e
            for e in await self._events(name)
            if e["id"] > last and e.get("environment") in (env, None)
        ]
        return sorted(fresh, key=lambda e: int(e["id"]))

    def _project_path(self) -> str:
        return f"/api/admin/projects/{self.config.project}"

    def _env_path(self, name: str) -> str:
        return f"{self._project_path()}/features/{name}/environments/{self.config.environment}"

    def _token(self) -> str:
        token = self._environ.get(self.config.token_env)
        if not token:
            raise FinalError(
                f"Unleash admin token: environment variable {self.config.token_env} is not set"
            )
        return token

    def _lock(self, name: str) -> asyncio.Lock:
        locks = _LOCKS.setdefault(asyncio.get_running_loop(), {})
        scope = f"{self.config.url}|{self.config.project}|{self.config.environment}|{name}"
        return locks.setdefault(scope, asyncio.Lock())

    async def _request(
        self, method: str, path: str, *, json: Any = None, ok: int | None = None
    ) -> httpx.Response:
        token = self._token()
        what = f"Unleash {method} {path}"
        try:
            response = await self._http.request(
                method,
                self.config.url + path,
                json=json,
                headers={"Authorization": token, "Accept": "application/json"},
                timeout=self.config.timeout_s,
            )
        except httpx.TransportError as err:
            raise transport_error(what, err, timeout_s=self.config.timeout_s) from None
        status = response.status_code
        if status == ok:
            return response
        hint = f" (check the token in {self.config.token_env})" if status in (401, 403) else ""
        error = status_error(
            what, response, lambda answer: _unleash_message(answer, token), hint=hint
        )
        if error is not None:
            raise error
        return response


def _feature_name(key: str) -> str:
    if not (1 <= len(key) <= 100) or key in (".", "..") or not set(key) <= _URL_SAFE:
        raise FinalError(
            f"{key!r} cannot be an Unleash feature name (1-100 URL-friendly characters, "
            "not '.' or '..')"
        )
    return key


def _variant_name(value: str) -> str:
    """Unleash variant names must be URL-friendly; the payload keeps the exact value."""
    name = "".join(c if c in _URL_SAFE else "_" for c in value)[:100].strip("_")
    return name if name not in ("", ".", "..") else "value"


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise FinalError(f"Unleash answered {response.status_code} without a JSON object")
    return body


def _unleash_message(response: httpx.Response, token: str) -> str:
    """Unleash's ``message`` and ``details[].message``, secrets scrubbed."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        parts = [str(body.get("message") or body.get("name") or "")]
        details = body.get("details")
        if isinstance(details, list):
            parts.extend(
                str(d.get("message"))
                for d in details
                if isinstance(d, dict) and d.get("message") and d.get("message") != parts[0]
            )
        text = "; ".join(p for p in parts if p)
    else:
        text = response.text[:300]
    text = text or "(no message)"
    return text.replace(token, "[redacted]") if token else text
