"""OFREP 0.3 (OpenFeature Remote Evaluation Protocol): AI applications read control values here.

Every instance of every AI application polls these endpoints, often once per flag evaluation
(the PyPI provider has no cache), so they answer from the store's in-memory copy
(``BuiltinControlStore.current``, dropped at once by a write in this process and, on
PostgreSQL, by another replica's write through ``LISTEN/NOTIFY``; polling is the fallback) and
build the JSON by hand.
Shaped around the PyPI ``openfeature-provider-ofrep`` 0.3 client:

- a 200 always carries ``variant`` (the client fails without it) and ``reason: STATIC`` (it
  maps reasons by enum name, so only standard names);
- a body of ``{"context": {}}``, ``{}`` or nothing is accepted (values do not depend on
  context);
- never 429: one 429 pauses *every* flag evaluation in that application until Retry-After.
  While the database is unreachable the last values read are served; only a process that
  never read them answers 500 (and applications fall back to their code defaults).

Closed by default (:func:`bot.api.auth.require_access`): clients send ``BALLAST_OFREP_TOKEN``
as a bearer token or as ``X-API-Key`` (both listed by the OFREP spec), or a named token with the
reader role.

The endpoints are :class:`~bot.api.direct.DirectRoute` routes on the app's own router: an
application polls them back to back, and FastAPI's parameter solving and an included router's
dispatch cost more than the evaluation.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response

from actions.control_values import variant_of
from actions.controls import KEY_PATTERN
from actions.errors import ActionError
from bot.api.auth import require_access
from bot.api.direct import add_direct_route
from bot.api.services import services_of
from bot.api.webhooks import BodyTooLarge, read_bounded
from bot.auth.roles import Role
from bot.controls.store import BuiltinControlStore, ControlValue

PREFIX = "/ofrep/v1"
MAX_BODY_BYTES = 64 * 1024  # a context is a few attributes; anything bigger is a mistake


class _BadRequest(Exception):
    def __init__(self, code: str, details: str) -> None:
        self.code = code
        self.details = details
        super().__init__(details)


async def evaluate_flag(request: Request, key: str) -> Response:
    """Evaluate one flag: its stored value, whatever the context."""
    await _authorize(request)
    try:
        await _read_context(request)
    except _BadRequest as err:
        return _json({"key": key, "errorCode": err.code, "errorDetails": err.details}, 400)
    if not KEY_PATTERN.match(key):
        return _not_found(key, "flag keys are 1 to 200 characters of a-z 0-9 . _ -")
    try:
        snapshot = await _store(request).current()
    except ActionError:  # logged by the store, at most once a second
        return _unavailable()
    control = snapshot.values.get(key)
    if control is None:
        return _not_found(key, f"no control value is stored for {key}")
    return _json(_evaluation(control), 200)


async def evaluate_flags(request: Request) -> Response:
    """Evaluate every flag; ``If-None-Match`` with the current ETag answers 304, no body."""
    await _authorize(request)
    try:
        await _read_context(request)
    except _BadRequest as err:
        return _json({"errorCode": err.code, "errorDetails": err.details}, 400)
    try:
        snapshot = await _store(request).current()
    except ActionError:  # logged by the store, at most once a second
        return _unavailable()
    headers = _cache_headers(snapshot.etag)
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None and _matches(if_none_match, snapshot.etag):
        return Response(status_code=304, headers=headers)
    body = {"flags": [_evaluation(control) for control in snapshot.values.values()]}
    return _json(body, 200, headers)


def install(app: FastAPI) -> None:
    """Add the OFREP endpoints to ``app``'s own router (before the included routers)."""
    for path, endpoint in (
        (f"{PREFIX}/evaluate/flags/{{key}}", evaluate_flag),
        (f"{PREFIX}/evaluate/flags", evaluate_flags),
    ):
        add_direct_route(app, path, endpoint, methods=["POST"], tags=["ofrep"])


def _store(request: Request) -> BuiltinControlStore:
    return services_of(request).controls


async def _authorize(request: Request) -> None:
    await require_access(
        request,
        services_of(request).settings.ofrep_token,
        role=Role.READER,
        what="OFREP",
        env="BALLAST_OFREP_TOKEN",
        api_key=True,
    )


async def _read_context(request: Request) -> None:
    """Check the body is ``{"context": {...}}``, ``{}`` or empty; the context is unused."""
    try:
        raw = await read_bounded(request, MAX_BODY_BYTES)
    except BodyTooLarge:
        raise _BadRequest(
            "GENERAL", f"request body is larger than {MAX_BODY_BYTES} bytes"
        ) from None
    if not raw.strip():
        return
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as err:
        raise _BadRequest("PARSE_ERROR", f"request body is not valid JSON: {err}") from None
    if not isinstance(body, dict):
        raise _BadRequest(
            "PARSE_ERROR", 'request body must be a JSON object such as {"context": {}}'
        )
    context = body.get("context")
    if context is not None and not isinstance(context, dict):
        raise _BadRequest(
            "INVALID_CONTEXT", f"context must be a JSON object, not {type(context).__name__}"
        )


def _evaluation(control: ControlValue) -> dict[str, Any]:
    return {
        "key": control.key,
        "value": control.value,
        "reason": "STATIC",
        "variant": variant_of(control.value),
        "metadata": {"version": control.version},
    }


def _matches(if_none_match: str, tag: str) -> bool:
    """RFC 9110 weak comparison against each listed tag; ``*`` matches anything."""
    for candidate in if_none_match.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == tag:
            return True
    return False


def _cache_headers(tag: str) -> dict[str, str]:
    # no-cache: a cache may keep the answer but must revalidate it with the ETag every time.
    return {"ETag": tag, "Cache-Control": "no-cache"}


def _unavailable() -> Response:
    return _json({"errorDetails": "the control store is unavailable; try again shortly"}, 500)


def _not_found(key: str, details: str) -> Response:
    return _json({"key": key, "errorCode": "FLAG_NOT_FOUND", "errorDetails": details}, 404)


def _json(body: dict[str, Any], status: int, headers: dict[str, str] | None = None) -> Response:
    content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    return Response(content, status_code=status, headers=headers, media_type="application/json")
