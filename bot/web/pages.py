"""Rendering for the console: the Jinja2 environment (autoescaped: alert labels are hostile),
the session cookie, the viewer's principal and role checks, deep links.

Every page goes through :func:`render`, which writes the session cookie back (HttpOnly,
SameSite=Lax, Secure over HTTPS) so even a signed-out visitor holds a CSRF token for the login
form.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

import bot
from bot.api.services import services_of
from bot.auth.principal import Principal
from bot.auth.roles import Role
from bot.web.identity import principal_of_proxy, principal_of_session
from bot.web.sessions import COOKIE, Session, SessionCodec

HERE = Path(__file__).resolve().parent
PREFIX = "/ui"


class LoginRequired(Exception):
    """No principal: the handler answers with a redirect to the login form."""


class Forbidden(Exception):
    """A principal without the role the page or form needs: a 403 page."""

    def __init__(self, message: str) -> None:
        super().__init__(message)


def when(value: datetime | None) -> Markup:
    """A ``<time>`` in UTC; console.js shows it in the viewer's zone, UTC stays in the title."""
    if value is None:
        return Markup("—")
    utc = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    iso = utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    shown = utc.strftime("%Y-%m-%d %H:%M:%S UTC")
    return Markup('<time datetime="{0}" title="{1}">{1}</time>').format(iso, shown)


def web_url(value: object) -> str | None:
    """The URL if it is http(s) with a host, else None (``javascript:`` never becomes a link)."""
    text = str(value or "").strip()
    try:
        parts = urlsplit(text)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return text


def show_value(value: object) -> str:
    """A control or before/after value as people read it (``—`` for none)."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = when
    env.filters["web_url"] = web_url
    env.filters["value"] = show_value
    env.filters["path"] = lambda text: quote(str(text), safe="/")
    env.globals["version"] = bot.__version__
    env.globals["prefix"] = PREFIX
    return env


ENV = _environment()


def codec_of(request: Request) -> SessionCodec:
    codec: SessionCodec = request.app.state.web_sessions
    return codec


def session_of(request: Request) -> Session:
    """The request's session (made fresh when it has none or a bad one), cached on it."""
    cached = getattr(request.state, "web_session", None)
    if isinstance(cached, Session):
        return cached
    session = codec_of(request).load(request.cookies.get(COOKIE)) or Session()
    request.state.web_session = session
    return session


def set_session(request: Request, response: Response, session: Session | None) -> None:
    """Write ``session`` into the cookie (None: clear it)."""
    secure = request.url.scheme == "https" or base_url(request).startswith("https:")
    if session is None:
        response.delete_cookie(COOKIE, path=PREFIX, secure=secure, httponly=True, samesite="lax")
        return
    request.state.web_session = session
    response.set_cookie(
        COOKIE,
        codec_of(request).dump(session),
        max_age=max(1, int(session.expires - codec_of(request).now())) if session.expires else None,
        path=PREFIX,
        secure=secure,
        httponly=True,
        samesite="lax",
    )


async def viewer_of(request: Request) -> Principal | None:
    """The principal behind this browser: the trusted proxy's header, else the session."""
    cached = getattr(request.state, "web_principal", None)
    if isinstance(cached, Principal):
        return cached
    services = services_of(request)
    principal = await principal_of_proxy(services.auth, request)
    if principal is None:
        who = session_of(request).who
        principal = None if who is None else principal_of_session(services.auth, who)
    if principal is not None:
        request.state.web_principal = principal
    return principal


def need(role: Role) -> Any:
    """A dependency: the viewer, who must have ``role`` (login redirect or 403 page)."""

    async def dependency(request: Request) -> Principal:
        principal = await viewer_of(request)
        if principal is None:
            raise LoginRequired
        if not principal.has(role):
            raise Forbidden(f"{principal.name} lacks the {role.value} role for this page")
        return principal

    dependency.__name__ = f"need_{role.value}"
    return dependency


def base_url(request: Request) -> str:
    """Where people reach this server: BALLAST_PUBLIC_URL, else the request's own base."""
    configured = services_of(request).settings.public_url
    return (configured or str(request.base_url)).rstrip("/")


def link(request: Request, path: str) -> str:
    """An absolute URL of a console page, for pasting into Slack."""
    return base_url(request) + PREFIX + path


def render(
    request: Request,
    template: str,
    context: dict[str, Any],
    *,
    status_code: int = 200,
) -> HTMLResponse:
    session = session_of(request)
    principal = getattr(request.state, "web_principal", None)
    flash, session.flash = session.flash, None
    html = ENV.get_template(template).render(
        request=request,
        viewer=principal,
        csrf=session.csrf,
        flash=flash,
        link=lambda path: link(request, path),
        Role=Role,
        **context,
    )
    response = HTMLResponse(html, status_code=status_code)
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    set_session(request, response, session)
    return response


def back_to(request: Request, path: str, message: str) -> RedirectResponse:
    """After a form that worked: 303 to ``path`` with ``message`` shown once there."""
    session = session_of(request)
    session.flash = message
    response = RedirectResponse(PREFIX + path, status_code=303)
    set_session(request, response, session)
    return response
