"""A rig for the Slack outbox: a migrated database, the Slack emulator, a hand-moved clock.

Ballast's budgets run on the test clock, so pacing is asserted in *test* time: every call the
emulator answers during one ``step`` is stamped with the clock's time at that step. The
emulator's own (real-time) rate limits are off here; the real-time test turns them on.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import func, select

from bot.settings import Settings
from bot.slack.budgets import BudgetLimits, SlackBudgets
from bot.slack.delivery import ClientFactory, SlackDelivery, slack_client_factory
from bot.slack.outbox import Enqueued, OutboxState, SlackOutbox
from bot.store.database import Database
from bot.store.tables import SlackIncidentMessage, SlackOutboxEntry
from tests.conftest import Clock
from tests.rows import incident_row
from tests.slack_emulator import DEFAULT_LIMITS, Call, SlackChannel, SlackEmulator

TOKEN = "xoxb-ballast-test"
INCIDENTS = SlackChannel("C0INCIDENT", "incidents")
OTHER = SlackChannel("C0OTHER001", "other")
STORM = [SlackChannel(f"C0STORM{n:03d}", f"storm-{n}") for n in range(4)]
NO_LIMITS = dict.fromkeys(DEFAULT_LIMITS)


@pytest.fixture(scope="module")
def emulator() -> Iterator[SlackEmulator]:
    with SlackEmulator(channels=[INCIDENTS, OTHER, *STORM], limits=NO_LIMITS) as running:
        yield running


@pytest.fixture
def slack(emulator: SlackEmulator) -> SlackEmulator:
    emulator.reset()
    return emulator


@pytest.fixture
def clock() -> Clock:
    # Near real time: the emulator's message ts are real epoch seconds, and the crash lookup
    # searches from the row's creation time.
    return Clock(datetime.now(UTC).replace(microsecond=0))


class Rig:
    """Enqueue in transactions, deliver in steps of test time, and ask what Slack saw."""

    def __init__(self, db: Database, slack: SlackEmulator, clock: Clock) -> None:
        self.db = db
        self.slack = slack
        self.clock = clock
        self.woken = 0
        self.outbox = SlackOutbox(clock=clock, on_commit=self._woken)
        self.stamps: dict[int, datetime] = {}
        self.deliveries: list[SlackDelivery] = []
        self.delivery = self.new_delivery()

    def _woken(self) -> None:
        self.woken += 1

    def client_factory(self) -> ClientFactory:
        settings = Settings(slack_bot_token=TOKEN, slack_api_url=self.slack.base_url)
        return slack_client_factory(settings, timeout=5)

    def new_delivery(
        self,
        client_factory: ClientFactory | None = None,
        limits: BudgetLimits | None = None,
        **options: Any,
    ) -> SlackDelivery:
        options.setdefault("call_timeout", 5.0)
        delivery = SlackDelivery(
            self.db,
            client_factory or self.client_factory(),
            self.clock,
            SlackBudgets(self.clock, limits),
            **options,
        )
        self.deliveries.append(delivery)
        return delivery

    async def restart(self, **options: Any) -> SlackDelivery:
        """A new process: the old one's sender lease goes with it, nothing stays in memory."""
        await self.delivery.close()
        self.delivery = self.new_delivery(**options)
        return self.delivery

    async def incident(self, title: str = "Groundedness low") -> int:
        now = self.clock()
        async with self.db.transaction() as session:
            row = incident_row(
                f"test:{title}:{now.timestamp()}:{len(self.stamps)}",
                now,
                open_key=None,
                status="triggered",
                title=title,
                severity="high",
            )
            session.add(row)
            await session.flush()
            return row.id

    async def enqueue(self, work: Callable[[Any], Awaitable[Enqueued]]) -> Enqueued:
        async with self.db.transaction() as session:
            return await work(session)

    async def step(self, seconds: float = 0.0, delivery: SlackDelivery | None = None) -> int:
        """Move the clock, deliver what may go now, stamp the new calls with the clock."""
        self.clock.advance(seconds=seconds)
        done = await (delivery or self.delivery).drain()
        for call in self.slack.calls():
            self.stamps.setdefault(call.seq, self.clock())
        return done

    async def settle(self, step: float = 0.5, limit: float = 600.0) -> float:
        """Step until nothing is pending or sending; returns the test seconds it took."""
        start = self.clock()
        while await self.active():
            if (self.clock() - start).total_seconds() > limit:
                left = [(r.idempotency_key, r.state, r.error) for r in await self.rows()]
                raise AssertionError(f"outbox not settled after {limit}s: {left}")
            await self.step(step)
        return (self.clock() - start).total_seconds()

    async def active(self) -> int:
        async with self.db.sessions() as session:
            states = (OutboxState.PENDING, OutboxState.SENDING)
            query = select(func.count()).where(SlackOutboxEntry.state.in_(states))
            return int(await session.scalar(query) or 0)

    async def rows(self) -> list[SlackOutboxEntry]:
        async with self.db.sessions() as session:
            query = select(SlackOutboxEntry).order_by(SlackOutboxEntry.id)
            return list((await session.scalars(query)).all())

    async def row(self, key: str) -> SlackOutboxEntry:
        async with self.db.sessions() as session:
            query = select(SlackOutboxEntry).where(SlackOutboxEntry.idempotency_key == key)
            return (await session.scalars(query)).one()

    async def message_of(self, incident_id: int) -> SlackIncidentMessage | None:
        async with self.db.sessions() as session:
            return await session.get(SlackIncidentMessage, incident_id)

    def calls(self, method: str | None = None, channel: str | None = None) -> list[Call]:
        return self.slack.calls(method, channel)

    def times(self, calls: list[Call]) -> list[float]:
        """Test-clock seconds of each call since the first one."""
        if not calls:
            return []
        first = self.stamps[calls[0].seq]
        return [(self.stamps[call.seq] - first).total_seconds() for call in calls]

    async def close(self) -> None:
        for delivery in self.deliveries:
            await delivery.close()


@pytest.fixture
async def rig(db: Database, slack: SlackEmulator, clock: Clock) -> AsyncIterator[Rig]:
    made = Rig(db, slack, clock)
    yield made
    await made.close()


def message(text: str, **extra: Any) -> dict[str, Any]:
    return {"text": text, **extra}


class DyingClient(AsyncWebClient):
    """A client whose process "dies" at one call of ``method``: it hangs (a dead process never
    records an answer) until the test cancels it, before or after Slack got the request."""

    def __init__(self, *, method: str, after_slack: bool, **options: Any) -> None:
        super().__init__(**options)
        self.die_at = method
        self.after_slack = after_slack
        self.died = False
        self.dead = asyncio.Event()

    async def api_call(self, api_method: str, **kwargs: Any) -> Any:  # type: ignore[override]
        dying = api_method == self.die_at and not self.died
        if dying and not self.after_slack:
            await self._die()
        response = await super().api_call(api_method, **kwargs)
        if dying:
            await self._die()
        return response

    async def _die(self) -> None:
        self.died = True
        self.dead.set()
        await asyncio.Event().wait()


class HookedClient(AsyncWebClient):
    """Runs ``hook`` once, while the first call of ``method`` is in flight."""

    def __init__(self, *, method: str, hook: Callable[[], Awaitable[None]], **options: Any):
        super().__init__(**options)
        self.method, self.hook = method, hook
        self.ran = False

    async def api_call(self, api_method: str, **kwargs: Any) -> Any:  # type: ignore[override]
        if api_method == self.method and not self.ran:
            self.ran = True
            await self.hook()
        return await super().api_call(api_method, **kwargs)


def hooked(rig: Rig, method: str, hook: Callable[[], Awaitable[None]]) -> ClientFactory:
    client = HookedClient(
        method=method, hook=hook, token=TOKEN, base_url=rig.slack.base_url, retry_handlers=[]
    )
    return lambda: client


def dying(rig: Rig, method: str, *, after_slack: bool) -> DyingClient:
    return DyingClient(
        method=method,
        after_slack=after_slack,
        token=TOKEN,
        base_url=rig.slack.base_url,
        retry_handlers=[],
    )


async def until(condition: Callable[[], bool], within: float = 5.0) -> None:
    """Wait for something another thread (the emulator) does."""
    for _ in range(int(within / 0.005)):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"still false after {within}s: {condition}")


async def kill(task: Any) -> None:
    """Cancel a worker mid-call, as ``kill -9`` would stop it (nothing more is recorded)."""
    task.cancel()
    with contextlib.suppress(BaseException):
        await task


LEASE = timedelta(minutes=2)
