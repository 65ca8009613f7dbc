"""One mapping from Ballast's errors to HTTP answers, for every router.

The message of the error is the ``detail``: it already says what is wrong and how to fix it.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from bot.errors import ConflictError, NotFoundError, PolicyError

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
