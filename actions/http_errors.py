"""The one mapping from an HTTP exchange to the executor's errors.

``RetryableError``: a timeout, a connection that failed, ``429`` (with the server's
``Retry-After`` in seconds, when it sent one) and any ``5xx``. ``FinalError``: any other
``4xx`` — retrying the same request cannot help. Each caller names the exchange (``what``) and
says how to quote the response (scrubbed of its secrets); the wording is the same everywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from actions.errors import ActionError, FinalError, RetryableError

if TYPE_CHECKING:  # imported when a call is made: loading runbooks need not pay for httpx
    import httpx


def transport_error(
    what: str,
    err: httpx.TransportError,
    *,
    timeout_s: float | None = None,
    unreachable: str = "failed",
) -> RetryableError:
    """The request got no answer. ``timeout_s`` is named in a timeout's message when given;
    ``unreachable`` is the word for a failed connection."""
    import httpx

    if isinstance(err, httpx.TimeoutException):
        after = "" if timeout_s is None else f" after {timeout_s:g}s"
        return RetryableError(f"{what} timed out{after}")
    return RetryableError(f"{what} {unreachable}: {type(err).__name__}")


def status_error(
    what: str,
    response: httpx.Response,
    quote: Callable[[httpx.Response], str],
    *,
    quote_retryable: bool = True,
    hint: str = "",
) -> ActionError | None:
    """The error an answer means, or None for a success (below 400). ``quote`` gives what the
    server said (only called for an error); ``hint`` ends a final error's message."""
    status = response.status_code
    if status == 429 or status >= 500:
        said = f": {quote(response)}" if quote_retryable else ""
        return RetryableError(
            f"{what} answered {status}{said}", retry_after=retry_after_seconds(response)
        )
    if status >= 400:
        return FinalError(f"{what} answered {status}: {quote(response)}{hint}")
    return None


def retry_after_seconds(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds (the delta form; an HTTP date is not used by these APIs)."""
    value = response.headers.get("retry-after", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
