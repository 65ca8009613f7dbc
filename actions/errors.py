"""Errors of actions and control-plane backends, in one tree.

::

    ActionError                  an action could not do what it was asked
    ├── RetryableError           worth trying again: timeout, connection error, 5xx, 429
    │                            (``retry_after`` carries the server's Retry-After, if any)
    └── FinalError               retrying cannot help: 4xx, invalid value, missing config,
                                 host not allowed, no previous value to roll back to

Only the executor retries, and only ``RetryableError``. Messages never contain secrets.
"""

from __future__ import annotations


class ActionError(Exception):
    """Base of every action failure."""


class RetryableError(ActionError):
    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class FinalError(ActionError):
    pass
