"""A control action applying an approved plan to the built-in store, on SQLite and PostgreSQL.

The executor hands the apply the plan approved at request time. A fixed target is written
without reading the live value first (the write answers what was there); these tests hold the
rules that read used to decide: a retry keeps the plan's value before (what undo restores), a
value moved meanwhile is what the apply replaced, and a dry run still shows the live value.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import event

from actions.builtin.disable_tool import DisableTool, ToolParams
from actions.builtin.rollback_prompt import RollbackPrompt
from actions.context import ActionContext, ControlPlan
from actions.controls import prompt_version_key
from bot.controls import BuiltinControlStore
from bot.store.database import Database

KEY = "support.tools.order_lookup.enabled"
PARAMS = ToolParams(service="support", tool="order_lookup")
PLAN = ControlPlan(key=KEY, before=True, after=False)


def context(store: BuiltinControlStore, *, dry_run: bool = False) -> ActionContext:
    return ActionContext(
        backend_for=lambda service: store,
        history=store.history_log,
        http=None,  # type: ignore[arg-type]
        messenger=None,  # type: ignore[arg-type]
        pager=None,  # type: ignore[arg-type]
        http_policy=None,  # type: ignore[arg-type]
        actor="U0ONCALL",
        idempotency_key="ballast:1:disable-order-lookup:1",
        reason="order answers cite wrong states",
        dry_run=dry_run,
        plan=PLAN,
    )


@pytest.fixture
def statements(db: Database) -> Any:
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", record)
    yield seen
    event.remove(db.engine.sync_engine, "before_cursor_execute", record)


async def test_an_approved_plan_is_written_without_reading_first(
    store: BuiltinControlStore, statements: list[str]
) -> None:
    await store.write(KEY, True, actor="U0ONCALL", reason="on by default")
    statements.clear()

    outcome = await DisableTool().apply(PARAMS, context(store))

    assert (outcome.before, outcome.after) == (True, False)
    assert outcome.undo_state == {"key": KEY, "before": True, "after": False}
    # The write's own transaction is all: it starts by moving the revision (nothing read
    # before it), and reads the value once, under its lock.
    first = next(i for i, s in enumerate(statements) if "control_revision" in s)
    assert not any("control_values" in s for s in statements[:first]), statements
    reads = [s for s in statements if s.lstrip().startswith("SELECT") and "control_values" in s]
    assert len(reads) == 1, statements
    assert await store.read(KEY) is False


async def test_a_retry_keeps_the_value_before_from_the_plan(store: BuiltinControlStore) -> None:
    """The apply ran once (the value is at the target); the second run must not record
    False → False, or undo would restore False."""
    await store.write(KEY, True, actor="U0ONCALL", reason="on by default")
    await DisableTool().apply(PARAMS, context(store))

    again = await DisableTool().apply(PARAMS, context(store))

    assert (again.before, again.after) == (True, False)
    assert again.undo_state["before"] is True
    assert again.response["changed"] is False
    history = await store.history(KEY)
    assert [(c.before, c.after) for c in history][:2] == [(False, False), (True, False)]


async def test_a_value_moved_meanwhile_is_what_the_apply_replaced(
    store: BuiltinControlStore,
) -> None:
    """Approved when the key was True; someone removed it since: undo restores "no value"."""
    outcome = await DisableTool().apply(PARAMS, context(store))

    assert (outcome.before, outcome.after) == (None, False)
    assert outcome.undo_state["before"] is None
    assert outcome.response["changed"] is True


async def test_a_dry_run_of_an_approved_plan_shows_the_live_value(
    store: BuiltinControlStore,
) -> None:
    outcome = await DisableTool().apply(PARAMS, context(store, dry_run=True))

    assert outcome.before is None  # live: no value, not the plan's True
    assert outcome.summary == f"dry run: would set {KEY} from (unset) to false"
    assert await store.read(KEY) is None


async def test_a_retry_of_a_rollback_to_previous_keeps_the_value_before(
    store: BuiltinControlStore,
) -> None:
    """A target resolved from what was live (``to: previous``) is still read first: the retry
    of an apply that landed is told from the live value, and is not refused as stale."""
    key = prompt_version_key("support")
    await store.write(key, "v1", actor="U0ONCALL", reason="ship v1")
    await store.write(key, "v2", actor="U0ONCALL", reason="ship v2")
    params = RollbackPrompt().parse({"service": "support", "to": "previous"})
    plan = await RollbackPrompt().plan(params, context(store))
    assert (plan.before, plan.after) == ("v2", "v1")
    assert plan.resolved
    ctx = replace(context(store), plan=plan)

    first = await RollbackPrompt().apply(params, ctx)
    again = await RollbackPrompt().apply(params, ctx)

    assert (first.before, first.after) == ("v2", "v1")
    assert (again.before, again.after) == ("v2", "v1")
    assert again.undo_state["before"] == "v2"
    assert await store.read(key) == "v1"
