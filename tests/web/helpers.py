"""Driving the console over HTTP as a browser without JavaScript would: forms and cookies."""

from __future__ import annotations

import re
from typing import Any

import httpx

CSRF = re.compile(r'name="csrf" value="([^"]+)"')

TOOL_ALERT = {
    "labels": {"alertname": "ToolFailing", "service": "svc-a", "tool": "search"},
    "annotations": {"summary": "<script>alert('label')</script> search is failing"},
    "starts_at": "2026-11-27T02:58:00Z",
}


def csrf_of(page: httpx.Response) -> str:
    found = CSRF.search(page.text)
    assert found is not None, page.text[:500]
    return found.group(1)


async def sign_in(client: httpx.AsyncClient, token: str) -> httpx.Response:
    form = await client.get("/ui/login")
    return await client.post(
        "/ui/login", data={"csrf": csrf_of(form), "token": token, "next": "/ui/incidents"}
    )


async def post_form(
    client: httpx.AsyncClient, page: str, action: str, **fields: Any
) -> httpx.Response:
    """Load ``page`` for its CSRF token, then post ``fields`` to ``action``."""
    shown = await client.get(page)
    return await client.post(action, data={"csrf": csrf_of(shown), **fields})
