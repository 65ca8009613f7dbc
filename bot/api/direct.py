"""Routes for the hot paths: the endpoint gets the Request (and the path's parameters, as
strings) and returns its own Response.

FastAPI's own handler solves parameters, runs the dependency machinery and validates the
returned value for every request: about 25 µs of CPU per request on these machines, a third of
what a 5-alert webhook costs at the ingest ceiling, and none of it needed by an endpoint that
reads its body itself and answers with a ready Response. :class:`DirectRoute` keeps everything
else of an APIRoute (OpenAPI, tags, exception handlers, middleware) and calls the endpoint
directly (FastAPI's documented extension point, ``get_route_handler``). Path parameters are
declared in the endpoint's signature, so OpenAPI documents them, and passed as Starlette
matched them (``request.path_params``): declare them ``str``, nothing converts or validates them.

:class:`DirectApp` goes one step further while nothing asks for FastAPI's server spans: it
serves its direct routes before the middleware stack and the router. An application polling
OFREP back to back spent more of Ballast's core in those layers (five middlewares, each wrapping
``send``, and the router's matching) than in the evaluation: 134 µs of server CPU per
evaluation through them, against the alert's own path to its mitigation on the same core
(issue 16).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.routing import APIRoute
from opentelemetry import trace
from opentelemetry.trace import NoOpTracerProvider, ProxyTracerProvider
from starlette.exceptions import HTTPException
from starlette.types import Receive, Scope, Send

# The Request, then the path's parameters by name: Callable[[Request, str...], ...] in effect.
DirectEndpoint = Callable[..., Awaitable[Response]]
ExceptionHandler = Callable[[Request, Exception], Response | Awaitable[Response]]


class DirectRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        endpoint: DirectEndpoint = self.endpoint

        async def handle(request: Request) -> Response:
            return await endpoint(request, **request.path_params)

        return handle


class DirectApp(FastAPI):
    """FastAPI that serves its :class:`DirectRoute` routes without the middleware stack and
    the router while FastAPI would make no span for them (no tracer provider installed).

    What such a request still gets, as through the stack: ``scope["app"]`` and
    ``scope["route"]`` (metrics label failures by the route's template, never the raw path),
    the path's parameters, the app's exception handlers (``HTTPException`` and the database's
    503 answer the same), and an unhandled exception raised to the server, which logs it and
    answers 500. What it skips is nothing a direct route uses: parameter solving,
    dependencies, the body limit (direct routes read their bodies bounded themselves).
    """

    _direct: tuple[tuple[re.Pattern[str], frozenset[str], DirectRoute], ...] = ()

    def add_direct(self, route: DirectRoute) -> None:
        self._direct = (*self._direct, (route.path_regex, frozenset(route.methods or ()), route))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and self._direct
            and not self.root_path
            and not scope.get("root_path")
            and not _server_spans()
        ):
            path: str = scope["path"]
            method: str = scope["method"]
            for pattern, methods, route in self._direct:
                matched = pattern.match(path)
                if matched is not None and method in methods:
                    await self._serve(route, matched.groupdict(), scope, receive, send)
                    return
        await super().__call__(scope, receive, send)

    async def _serve(
        self,
        route: DirectRoute,
        path_params: dict[str, str],
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        scope["app"] = self
        scope["route"] = route
        scope["path_params"] = path_params
        request = Request(scope, receive)
        try:
            response = await route.endpoint(request, **path_params)
        except Exception as err:
            handler = self._handler_for(err)
            if handler is None:
                raise
            answer = handler(request, err)
            response = await answer if inspect.isawaitable(answer) else answer
        await response(scope, receive, send)

    def _handler_for(self, err: Exception) -> ExceptionHandler | None:
        """The app's handler for ``err``, looked up as Starlette's exception middleware does:
        an ``HTTPException``'s status code first, then the exception's classes in order."""
        handlers: dict[Any, ExceptionHandler] = self.exception_handlers
        if isinstance(err, HTTPException) and err.status_code in handlers:
            return handlers[err.status_code]
        for cls in type(err).__mro__:
            if cls in handlers:
                return handlers[cls]
        return None


def _server_spans() -> bool:
    """Would FastAPI's native telemetry make a SERVER span: is a real provider installed?"""
    return not isinstance(trace.get_tracer_provider(), ProxyTracerProvider | NoOpTracerProvider)


def add_direct_route(
    app: FastAPI,
    path: str,
    endpoint: DirectEndpoint,
    *,
    methods: list[str],
    response_model: type[object] | None = None,
    tags: list[str] | None = None,
) -> None:
    """Add ``endpoint`` on the app's own router (call it before including other routers);
    a :class:`DirectApp` also serves it ahead of its middleware.

    On the app's router, not an included one: an included router's dispatch costs a few more
    µs per request. Routes are matched in the order they were added.
    """
    app.router.add_api_route(
        path,
        endpoint,
        methods=methods,
        response_model=response_model,
        tags=list(tags or []),
        route_class_override=DirectRoute,
    )
    route = app.router.routes[-1]
    if isinstance(app, DirectApp) and isinstance(route, DirectRoute):
        app.add_direct(route)
