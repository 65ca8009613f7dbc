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
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.routing import APIRoute

# The Request, then the path's parameters by name: Callable[[Request, str...], ...] in effect.
DirectEndpoint = Callable[..., Awaitable[Response]]


class DirectRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        endpoint: DirectEndpoint = self.endpoint

        async def handle(request: Request) -> Response:
            return await endpoint(request, **request.path_params)

        return handle


def add_direct_route(
    app: FastAPI,
    path: str,
    endpoint: DirectEndpoint,
    *,
    methods: list[str],
    response_model: type[object] | None = None,
    tags: list[str] | None = None,
) -> None:
    """Add ``endpoint`` on the app's own router (call it before including other routers).

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
