"""Form posts: parsed by hand (urlencoded only, no multipart dependency) and checked against
the session's CSRF token before anything else happens."""

from __future__ import annotations

from urllib.parse import parse_qsl

from fastapi import Request

from bot.web.pages import Forbidden, session_of
from bot.web.sessions import same_csrf

FORM = "application/x-www-form-urlencoded"


async def form_of(request: Request) -> dict[str, str]:
    """The posted fields (the last of a repeated name); {} for any other content type."""
    content_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if content_type != FORM:
        return {}
    body = (await request.body()).decode("utf-8", "replace")
    return dict(parse_qsl(body, keep_blank_values=True))


async def checked_form(request: Request) -> dict[str, str]:
    """The posted fields, or 403 when the hidden ``csrf`` field is not this session's token."""
    form = await form_of(request)
    if not same_csrf(form.get("csrf"), session_of(request)):
        raise Forbidden("the form's CSRF token is missing or stale: reload the page and try again")
    return form


def safe_next(target: str | None) -> str:
    """Where to go after sign-in: a console path only (never another site)."""
    if target and target.startswith("/ui/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/ui/incidents"
