"""JSON API routes read their body as JSON whatever its ``Content-Type`` says.

``curl -d '{"actor": "U024BE7LH"}'`` sends ``application/x-www-form-urlencoded``, many HTTP
clients send ``text/plain`` or nothing, and FastAPI validates such a body as raw bytes (a 422
that blames the body's type rather than what the caller meant). The webhooks and OFREP read
their bodies as JSON whatever the header says; :class:`JsonBodyRoute` gives every JSON API route
the same rule, in one place:

- no ``Content-Type``, ``text/plain`` or ``application/x-www-form-urlencoded``: the body is
  parsed as JSON, then validated as usual (the same 422 with the field's ``loc``, the same
  ``json_invalid`` 422 for a body that is not JSON);
- ``application/json`` and ``application/*+json``: unchanged;
- anything else (``multipart/form-data``, XML, ...): 415, naming what to send instead.

Safe for the state-changing routes: they all need ``Authorization: Bearer``, which a
cross-site HTML form (the reason browsers treat these content types as "simple") cannot send.
Routes without a body, and the OpenAPI description, are untouched.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, MutableMapping
from typing import Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

# Sent by clients that did not say the body is JSON: read as JSON all the same.
READ_AS_JSON = frozenset({"", "text/plain", "application/x-www-form-urlencoded"})


def media_type(content_type: str | None) -> str:
    """``"Text/Plain; charset=utf-8"`` → ``"text/plain"``; missing → ``""``."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def is_json(kind: str) -> bool:
    return kind == "application/json" or (
        kind.startswith("application/") and kind.endswith("+json")
    )


class JsonBodyRoute(APIRoute):
    """An APIRoute whose body, if it has one, is JSON whatever the ``Content-Type``."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if self.body_field is None:
            return handler

        async def handle(request: Request) -> Response:
            kind = media_type(request.headers.get("content-type"))
            if is_json(kind):
                return await handler(request)
            if kind not in READ_AS_JSON:
                return JSONResponse(
                    {
                        "detail": f"request body must be JSON, not {kind}: send it with "
                        "'Content-Type: application/json' (or none)"
                    },
                    status_code=415,
                )
            return await handler(Request(_as_json(request.scope), request.receive))

        return handle


def _as_json(scope: MutableMapping[str, Any]) -> dict[str, Any]:
    headers = [(k, v) for k, v in scope["headers"] if k.lower() != b"content-type"]
    headers.append((b"content-type", b"application/json"))
    return {**scope, "headers": headers}
