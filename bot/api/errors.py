"""One mapping from Ballast's errors to HTTP answers, for every router.

The message of the error is the ``detail``: it already says what is wrong and how to fix it.

A database error that may pass (a lock conflict still there after the store's own retries, a
lost connection, a pool timeout: :func:`bot.store.transient.classify`) is the server's
momentary trouble, not the request's fault: it answers 503 with ``Retry-After``, never 500.
Requests are safe to repeat (the executor's claims make a second run a no-op).
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from bot.errors import ConflictError, NotFoundError, PolicyError
from bot.store.transient import classify, reason

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = "1"

_STATUS: dict[type[Exception], int] = {
    NotFoundError: 404,
    PolicyError: 403,
    ConflictError: 409,
}


def install_error_handlers(app: FastAPI) -> None:
    for error, code in _STATUS.items():

        async def handle(_: Request, err: Exception, code: int = code) -> JSONResponse:
            return JSONResponse({"detail": str(err)}, status_code=code)

        app.add_exception_handler(error, handle)
    for error in (DBAPIError, PoolTimeout):
        app.add_exception_handler(error, database_trouble)


async def database_trouble(request: Request, err: Exception) -> JSONResponse:
    """503 for a database error that may pass; any other is re-raised (a bug: 500)."""
    kind = classify(err)
    if kind is None:
        raise err
    log.warning(
        "%s %s: database %s (%s), answering 503",
        request.method,
        request.url.path,
        kind,
        reason(err),
    )
    return JSONResponse(
        {"detail": f"the database is momentarily unavailable ({kind}); try again"},
        status_code=503,
        headers={"Retry-After": RETRY_AFTER_SECONDS},
    )
