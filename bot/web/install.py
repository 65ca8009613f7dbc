"""Mounts the console on the app: its routers, its static files, and the answers for a
missing sign-in (a redirect to the login form) and a missing role (a 403 page)."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from bot.api.principals import count_failure
from bot.web import controls, incidents, login, runbooks
from bot.web.pages import HERE, PREFIX, Forbidden, LoginRequired, render
from bot.web.sessions import SessionCodec

ROUTERS = (login.router, incidents.router, runbooks.router, controls.router)


def install(app: FastAPI, session_secret: str | None) -> None:
    app.state.web_sessions = SessionCodec.with_secret(session_secret)
    for router in ROUTERS:
        app.include_router(router)
    app.mount(PREFIX + "/static", StaticFiles(directory=HERE / "static"), name="web-static")

    async def to_login(request: Request, _: Exception) -> Response:
        count_failure(request, "missing")
        target = request.url.path if request.method == "GET" else PREFIX + "/incidents"
        if request.method == "GET" and request.url.query:
            target += "?" + request.url.query
        return RedirectResponse(f"{PREFIX}/login?next={quote(target, safe='')}", status_code=303)

    async def forbidden(request: Request, err: Exception) -> Response:
        count_failure(request, "forbidden")
        return render(request, "error.html", {"message": str(err)}, status_code=403)

    app.add_exception_handler(LoginRequired, to_login)
    app.add_exception_handler(Forbidden, forbidden)


__all__ = ["install"]
