"""Database trouble, said the way the executor understands it: retryable or final."""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError

from actions.errors import ActionError, FinalError, RetryableError
from bot.store.transient import is_transient


def store_error(err: BaseException, doing: str) -> ActionError:
    """Database trouble as the executor understands it: retryable if trying again may help."""
    cause = err.orig if isinstance(err, DBAPIError) and err.orig is not None else err
    first_line = (str(cause).splitlines() or [""])[0][:160]
    detail = f"{type(cause).__name__}: {first_line}" if first_line else type(cause).__name__
    # Lost connections, lock and pool timeouts, and a lost insert race all pass on their own.
    if is_transient(err):
        return RetryableError(f"the control store could not {doing} ({detail}); try again")
    return FinalError(f"the control store could not {doing} ({detail})")
