"""Let requests already waiting on the event loop go before more background work.

asyncio has no priorities: a task that goes on after an await runs until its next real wait,
and requests whose bytes arrived meanwhile wait behind it. After a commit that changed what
readers are served (a control value OFREP answers with), the readers should go first: the
bookkeeping after it (records, announcements) can wait a fraction of a millisecond.
"""

from __future__ import annotations

import asyncio

# Turns of the loop a request that is waiting in its socket needs before its handler has run:
# one to poll the socket (its protocol parses the request and makes the handler's task), one
# in which the handler's task is scheduled behind the yielding task's own wake-up, and one in
# which it runs (uvloop needs two of them, asyncio's own loop three).
TURNS_FOR_A_WAITING_REQUEST = 3


async def let_waiting_requests_in() -> None:
    """Yield to the loop until requests already waiting in their sockets have been handled
    (each handled up to its first real wait; an OFREP evaluation has none)."""
    for _ in range(TURNS_FOR_A_WAITING_REQUEST):
        await asyncio.sleep(0)
