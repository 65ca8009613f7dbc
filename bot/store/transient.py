"""The one classifier of database errors that may pass on their own.

Three callers ask three questions of the same errors, so the classifier names what went wrong
and each question is a set of those names:

* a transaction that lost a race or a lock is run again at once (:func:`should_redo`: the
  incident engine, the Slack delivery worker — see :mod:`bot.store.retry`);
* a webhook whose database is busy or away gets 503 with Retry-After, and the inbox writer does
  not split its group to find a bad request (:func:`is_unavailable`);
* the control store tells the executor whether trying again later may help (:func:`is_transient`).

Every ``OperationalError`` counts as unavailable, which on SQLite is broad: sqlite3 reports
most statement errors ("no such column") with that class too. The inbox and the control store
always counted them so; a statement error is a bug that no retry hides for long.
"""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

# PostgreSQL: deadlock_detected, serialization_failure; both mean "run it again". (asyncpg's
# errors for them reach SQLAlchemy as plain DBAPIError, so the code is what tells them apart.)
_RETRY_SQLSTATES = frozenset({"40P01", "40001"})
# PostgreSQL refusing or dropping connections, whatever the statement: connection exceptions
# (08), insufficient resources such as too many connections (53), operator intervention such as
# an admin shutdown or a server still starting (57P), and a database that does not accept
# connections now (55000, as during ALTER DATABASE ... ALLOW_CONNECTIONS false or a drop).
_AWAY_SQLSTATE_PREFIXES = ("08", "53", "57P", "55000")
# Lost connections, lock and pool timeouts.
_AWAY = (OperationalError, InterfaceError, PoolTimeout, OSError, TimeoutError)


class Transience(StrEnum):
    """Why a failed database call may succeed if made again."""

    CONFLICT = "conflict"  # another writer won a race (unique key) or a lock cycle was broken
    LOCKED = "locked"  # SQLite: the write lock stayed taken past the busy timeout
    UNAVAILABLE = "unavailable"  # a pool or lock timeout, a lost connection


def classify(err: BaseException) -> Transience | None:
    """What kind of passing trouble ``err`` is, or None when doing it again will not help."""
    if isinstance(err, IntegrityError):
        return Transience.CONFLICT  # e.g. the unique open key: another writer opened it first
    if isinstance(err, DBAPIError):
        for cause in (err.orig, getattr(err.orig, "__cause__", None)):
            sqlstate = getattr(cause, "sqlstate", None)
            if sqlstate in _RETRY_SQLSTATES:
                return Transience.CONFLICT
            if isinstance(sqlstate, str) and sqlstate.startswith(_AWAY_SQLSTATE_PREFIXES):
                return Transience.UNAVAILABLE
        if "database is locked" in str(err.orig):
            return Transience.LOCKED
        if err.connection_invalidated:
            return Transience.UNAVAILABLE
    if isinstance(err, _AWAY):
        return Transience.UNAVAILABLE
    return None


def should_redo(err: BaseException) -> bool:
    """Whether the failed transaction may simply be run again right away."""
    return classify(err) in (Transience.CONFLICT, Transience.LOCKED)


def is_unavailable(err: BaseException) -> bool:
    """The database is busy or away: not the request's fault; ask again later (503)."""
    return classify(err) in (Transience.LOCKED, Transience.UNAVAILABLE)


def is_transient(err: BaseException) -> bool:
    """Whether trying again (now or later) may help."""
    return classify(err) is not None


def reason(err: BaseException) -> str:
    """The driver's error class, for a log line (``DeadlockDetectedError``...)."""
    orig = err.orig if isinstance(err, DBAPIError) else None
    return type(orig).__name__ if orig is not None else type(err).__name__


__all__ = ["Transience", "classify", "is_transient", "is_unavailable", "reason", "should_redo"]
