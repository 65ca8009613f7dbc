"""Database trouble, said the way the executor understands it: retryable or final."""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from actions.errors import ActionError, FinalError, RetryableError

# Lost connections, lock and pool timeouts, and a lost insert race all pass on their own.
_TRANSIENT = (OperationalError, InterfaceError, PoolTimeout, IntegrityError, OSError, TimeoutError)


def store_error(err: BaseException, doing: str) -> ActionError:
    """Database trouble as the executor understands it: retryable if trying again may help."""
    cause = err.orig if isinstance(err, DBAPIError) and err.orig is not None else err
    first_line = (str(cause).splitlines() or [""])[0][:160]
    detail = f"{type(cause).__name__}: {first_line}" if first_line else type(cause).__name__
    transient = isinstance(err, _TRANSIENT) or (
        isinstance(err, DBAPIError) and err.connection_invalidated
    )
    if transient:
        return RetryableError(f"the control store could not {doing} ({detail}); try again")
    return FinalError(f"the control store could not {doing} ({detail})")
