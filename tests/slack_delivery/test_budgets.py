"""The token buckets alone: bursts, rates, any-window bounds, Retry-After pauses."""

from __future__ import annotations

from collections import deque
from datetime import timedelta

from bot.slack.budgets import WORKSPACE, BudgetLimits, Rate, SlackBudgets
from tests.conftest import Clock


def most_in_any_window(times: list[float], window: float) -> int:
    best, inside = 0, deque[float]()
    for at in times:
        inside.append(at)
        while inside[0] <= at - window:
            inside.popleft()
        best = max(best, len(inside))
    return best


def spend_greedily(budgets: SlackBudgets, clock: Clock, method: str, seconds: float) -> list[float]:
    """Call as often as the budget allows, checking every 10 ms of test time."""
    times, elapsed = [], 0.0
    keys = budgets.keys_for(method, "C1")
    while elapsed < seconds:
        if budgets.try_spend(keys) == 0:
            times.append(elapsed)
        else:
            clock.advance(seconds=0.01)
            elapsed += 0.01
    return times


def test_posts_burst_then_go_one_a_second_per_channel(clock: Clock) -> None:
    budgets = SlackBudgets(clock)
    c1 = budgets.keys_for("chat.postMessage", "C1")
    c2 = budgets.keys_for("chat.postMessage", "C2")
    assert [budgets.try_spend(c1) for _ in range(3)] == [0, 0, 0]
    assert budgets.try_spend(c1) == 1.0
    assert budgets.try_spend(c2) == 0, "another channel has its own budget"
    clock.advance(seconds=1)
    assert budgets.try_spend(c1) == 0
    assert budgets.try_spend(c1) > 0


def test_the_bound_holds_in_every_window_not_only_on_average(clock: Clock) -> None:
    budgets = SlackBudgets(clock)
    updates = spend_greedily(budgets, clock, "chat.update", 300)
    assert most_in_any_window(updates, 60.0) <= 39 < 50  # Tier 3 is ~50 a minute
    creates = spend_greedily(budgets, clock, "conversations.create", 300)
    assert most_in_any_window(creates, 60.0) <= 14  # "under 15 a minute"
    posts = spend_greedily(budgets, clock, "chat.postMessage", 60)
    assert most_in_any_window(posts, 10.0) <= 13  # ~1/s per channel, a burst of 3
    assert BudgetLimits().update_workspace.most_in(60) == 39


def test_retry_after_pauses_the_bucket_then_lets_one_call_through(clock: Clock) -> None:
    budgets = SlackBudgets(clock)
    keys = budgets.keys_for("chat.postMessage", "C1")
    budgets.pause(keys[:1], 7)
    assert budgets.try_spend(keys) == 7
    clock.advance(seconds=6.5)
    assert budgets.try_spend(keys) == 0.5
    clock.advance(seconds=0.5)
    assert budgets.try_spend(keys) == 0
    assert budgets.try_spend(keys) > 0, "one call to test the water, not a burst"


def test_a_refund_gives_back_a_token_not_spent(clock: Clock) -> None:
    budgets = SlackBudgets(clock)
    keys = (("conversations.create", WORKSPACE),)
    assert [budgets.try_spend(keys) for _ in range(2)] == [0, 0]
    assert budgets.wait(keys) > 0
    budgets.refund(keys)
    assert budgets.wait(keys) == 0


def test_update_spacing_and_scaling(clock: Clock) -> None:
    budgets = SlackBudgets(clock)
    assert budgets.update_due(None) is None
    assert budgets.update_due(clock()) == clock() + timedelta(seconds=15)
    fast = BudgetLimits().scaled(0.01)
    assert fast.update_per_message == timedelta(seconds=0.15)
    assert fast.post_per_channel == Rate(100.0, 3)
    assert BudgetLimits().rate_of(("usergroups.users.list", WORKSPACE)) == BudgetLimits().tier2
    assert BudgetLimits().rate_of(("some.new.method", WORKSPACE)) == BudgetLimits().tier2
