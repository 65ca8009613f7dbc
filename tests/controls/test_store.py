"""The built-in store on SQLite and PostgreSQL: writes, read-back, history, rollback, ETags."""

from __future__ import annotations

import asyncio
import itertools
import re

import pytest
from sqlalchemy import event

from actions.backends.base import WriteResult
from actions.errors import RetryableError
from bot.controls import BuiltinControlStore, ControlHistoryLog, ControlValueError
from bot.store.database import Database
from tests.conftest import Clock, DatabaseUnderTest

TOOL = "support.tools.web_search.enabled"
MODEL = "support.model"


async def test_write_reads_back_and_records(store: BuiltinControlStore, clock: Clock) -> None:
    assert await store.read(TOOL) is None
    first = await store.write(TOOL, False, actor="U024BE7LH", reason="tool errors at 40%")
    assert (first.key, first.before, first.after) == (TOOL, None, False)
    assert first.response["version"] == 1
    assert first.response["changed"] is True

    clock.advance(minutes=5)
    second = await store.write(TOOL, True, actor="alice", reason="undo")
    assert (second.before, second.after, second.response["version"]) == (False, True, 2)
    assert await store.read(TOOL) is True

    control = await store.get(TOOL)
    assert control is not None
    assert (control.value, control.value_type, control.version) == (True, "bool", 2)
    assert (control.updated_at, control.updated_by) == (clock.now, "alice")

    history = await store.history(TOOL)
    assert [(c.before, c.after, c.actor, c.reason, c.source) for c in history] == [
        (False, True, "alice", "undo", "builtin"),
        (None, False, "U024BE7LH", "tool errors at 40%", "builtin"),
    ]
    assert history[0].id == second.response["history_id"]


async def test_writing_the_same_value_changes_nothing_but_is_recorded(
    store: BuiltinControlStore,
) -> None:
    await store.write(MODEL, "gpt-4o", actor="alice", reason="")
    same = await store.write(MODEL, "gpt-4o", actor="bob", reason="make sure")
    assert (same.before, same.after, same.response["changed"]) == ("gpt-4o", "gpt-4o", False)
    control = await store.get(MODEL)
    assert control is not None
    assert (control.version, control.updated_by) == (1, "alice")  # the last real change
    assert [c.actor for c in await store.history(MODEL)] == ["bob", "alice"]


async def test_strings_and_booleans_stay_apart(store: BuiltinControlStore) -> None:
    await store.write("support.prompt_version", "true", actor="a", reason="")
    value = await store.read("support.prompt_version")
    assert value == "true"
    assert isinstance(value, str)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        (TOOL, "false"),
        ("support.autonomy", "manual"),
        ("support.autonmy", "off"),
        ("Support.model", "gpt-4o"),
        (MODEL, ""),
    ],
)
async def test_a_refused_write_changes_nothing(
    store: BuiltinControlStore, key: str, value: str
) -> None:
    await store.write(TOOL, True, actor="alice", reason="")
    await store.write(MODEL, "gpt-4", actor="alice", reason="")
    before = [(c.key, c.value, c.version) for c in await store.list()]
    tag = await store.etag()
    with pytest.raises(ControlValueError, match=re.escape(key)):
        await store.write(key, value, actor="mallory", reason="")
    assert [(c.key, c.value, c.version) for c in await store.list()] == before
    assert await store.etag() == tag
    for stored in (TOOL, MODEL, key):
        assert "mallory" not in [c.actor for c in await store.history(stored)]


@pytest.mark.parametrize("actor", ["", "   ", "x" * 201, "alice\x00", "alice\nforged log line"])
async def test_a_write_needs_an_actor(store: BuiltinControlStore, actor: str) -> None:
    with pytest.raises(ControlValueError, match=r"^actor must be 1 to 200 printable characters"):
        await store.write(MODEL, "gpt-4o", actor=actor, reason="")
    assert await store.list() == []


async def test_a_reason_is_free_text_without_control_characters(
    store: BuiltinControlStore,
) -> None:
    await store.write(MODEL, "gpt-4o", actor="alice", reason="line one\n\tline two ü")
    assert (await store.history(MODEL))[0].reason == "line one\n\tline two ü"
    with pytest.raises(ControlValueError, match=r"^reason may hold printable characters"):
        await store.write(MODEL, "gpt-4", actor="alice", reason="nul\x00byte")
    assert await store.read(MODEL) == "gpt-4o"


async def test_clear_removes_the_key_and_records_it(store: BuiltinControlStore) -> None:
    await store.write(TOOL, False, actor="ballast", reason="disable_tool")
    cleared = await store.clear(TOOL, actor="ballast", reason="undo: disable_tool")
    assert (cleared.before, cleared.after, cleared.response["changed"]) == (False, None, True)
    assert await store.read(TOOL) is None
    assert [(c.before, c.after) for c in await store.history(TOOL)] == [
        (False, None),
        (None, False),
    ]
    again = await store.clear(TOOL, actor="ballast", reason="")
    assert (again.before, again.after, again.response["changed"]) == (None, None, False)
    recreated = await store.write(TOOL, False, actor="ballast", reason="")
    assert recreated.response["version"] == 1


async def test_list_filters_by_service_exactly(store: BuiltinControlStore) -> None:
    for key in ("a_b.model", "acb.model", "a_b.tools.x.enabled", "a_bc.model", "b.model"):
        await store.write(key, True if key.endswith("enabled") else "m", actor="a", reason="")
    # ``_`` is a LIKE wildcard: the filter must not let ``acb`` through for ``a_b``.
    assert [c.key for c in await store.list("a_b")] == ["a_b.model", "a_b.tools.x.enabled"]
    assert [c.key for c in await store.list()] == [
        "a_b.model",
        "a_b.tools.x.enabled",
        "a_bc.model",
        "acb.model",
        "b.model",
    ]
    assert await store.list("nobody") == []


async def test_previous_value_walks_the_history(store: BuiltinControlStore) -> None:
    history = store.history_log
    assert await history.previous_value(MODEL, "gpt-4") is None  # never seen
    await store.write(MODEL, "gpt-4", actor="a", reason="")
    assert await history.previous_value(MODEL, "gpt-4") is None  # created: nothing before
    await store.write(MODEL, "gpt-4o", actor="a", reason="")
    await store.write(MODEL, "gpt-4o", actor="b", reason="no-op")  # must not hide gpt-4
    assert await history.previous_value(MODEL, "gpt-4o") == "gpt-4"
    await store.write(MODEL, "gpt-4", actor="a", reason="rollback")
    assert await history.previous_value(MODEL, "gpt-4") == "gpt-4o"
    assert await history.previous_value(MODEL, None) is None
    assert await history.previous_value("other.model", "gpt-4o") is None


async def test_previous_value_compares_types(store: BuiltinControlStore) -> None:
    await store.write(TOOL, True, actor="a", reason="")
    await store.write(TOOL, False, actor="a", reason="")
    assert await store.history_log.previous_value(TOOL, False) is True
    assert await store.history_log.previous_value(TOOL, "false") is None


async def test_changes_through_other_backends_count_for_rollback(
    db: Database, clock: Clock
) -> None:
    log = ControlHistoryLog(db, clock)
    key = "support.retrieval_index"
    await log.record_change(key, None, "kb-v1", actor="ballast", source="flagd")
    await log.record_change(key, "kb-v1", "kb-v2", actor="U1", reason="reindex", source="unleash")
    assert await log.previous_value(key, "kb-v2") == "kb-v1"
    assert [(c.source, c.after) for c in await log.history(key)] == [
        ("unleash", "kb-v2"),
        ("flagd", "kb-v1"),
    ]
    removed = await log.record_change(key, "kb-v2", None, actor="ballast", source="flagd")
    assert removed.after is None
    with pytest.raises(ControlValueError, match=r"^support\.human_review must be one of"):
        await log.record_change("support.human_review", None, "some", actor="a", source="flagd")
    with pytest.raises(ControlValueError, match=r"^source must be"):
        await log.record_change(key, None, "kb-v3", actor="a", source="")


async def test_previous_value_reads_past_a_page(store: BuiltinControlStore) -> None:
    log = store.history_log
    await store.write(MODEL, "old", actor="a", reason="")
    await store.write(MODEL, "current", actor="a", reason="")
    for _ in range(450):  # more than one page of no-ops on top
        await log.record_change(MODEL, "current", "current", actor="a", source="flagd")
    assert await log.previous_value(MODEL, "current") == "old"


async def test_etag_follows_writes_and_agrees_across_replicas(
    store: BuiltinControlStore, test_database: DatabaseUnderTest, clock: Clock
) -> None:
    replica_db: Database = test_database.make()
    try:
        replica = BuiltinControlStore(replica_db, clock)
        empty = await store.etag()
        assert empty == await replica.etag()
        await store.write(TOOL, False, actor="a", reason="")
        changed = await replica.etag()
        assert changed != empty
        assert changed == await store.etag()
        tag, values = await replica.snapshot()
        assert tag == changed
        assert [(v.key, v.value, v.version) for v in values] == [(TOOL, False, 1)]
    finally:
        await replica_db.close()


async def test_concurrent_writes_from_two_replicas_serialize(
    store: BuiltinControlStore, test_database: DatabaseUnderTest, clock: Clock
) -> None:
    """Every write sees the one before it: versions and revisions form one unbroken chain."""
    replica_db: Database = test_database.make()
    try:
        replica = BuiltinControlStore(replica_db, clock)
        writers = [store, replica]
        results = await asyncio.gather(
            *(writers[i % 2].write(MODEL, f"m{i}", actor=f"r{i % 2}", reason="") for i in range(30))
        )
    finally:
        await replica_db.close()
    by_version = sorted(results, key=lambda r: r.response["version"])
    assert [r.response["version"] for r in by_version] == list(range(1, 31))
    assert [r.response["revision"] for r in by_version] == list(range(1, 31))
    for earlier, later in itertools.pairwise(by_version):
        assert later.before == earlier.after
    final = await store.get(MODEL)
    assert final is not None
    assert (final.value, final.version) == (by_version[-1].after, 30)
    assert len(await store.history(MODEL)) == 30


async def test_an_unreachable_database_is_retryable(clock: Clock) -> None:
    down = Database("postgresql+asyncpg://nobody@127.0.0.1:1/none", connect_args={"timeout": 2})
    try:
        store = BuiltinControlStore(down, clock)
        with pytest.raises(RetryableError, match=r"^the control store could not write"):
            await store.write(MODEL, "gpt-4o", actor="a", reason="")
        with pytest.raises(RetryableError):
            await store.read(MODEL)
    finally:
        await down.close()


async def test_current_is_refreshed_by_own_writes_and_bounded_for_others(
    db: Database, test_database: DatabaseUnderTest, clock: Clock
) -> None:
    serving = BuiltinControlStore(db, clock, max_staleness=3600)
    replica_db: Database = test_database.make()
    try:
        replica = BuiltinControlStore(replica_db, clock)
        assert dict((await serving.current()).values) == {}
        await serving.write(TOOL, False, actor="a", reason="")
        snapshot = await serving.current()
        assert snapshot.values[TOOL].value is False  # its own write: at once
        assert snapshot.etag == await serving.etag()

        await replica.write(TOOL, True, actor="b", reason="")
        assert (await serving.current()).values[TOOL].value is False  # within max_staleness
        serving.max_staleness = 0
        refreshed = await serving.current()
        assert refreshed.values[TOOL].value is True
        assert refreshed.etag == await replica.etag()
    finally:
        await replica_db.close()


async def test_an_own_write_brings_the_copy_forward_only_when_nothing_else_changed(
    db: Database, test_database: DatabaseUnderTest, clock: Clock
) -> None:
    """After a write, the copy is updated in place only if it was exactly one revision behind;
    a write made elsewhere in between (not notified: no feed here) is never hidden."""
    serving = BuiltinControlStore(db, clock, max_staleness=3600)
    replica_db: Database = test_database.make()
    try:
        replica = BuiltinControlStore(replica_db, clock)
        await serving.write(TOOL, False, actor="a", reason="")
        assert (await serving.current()).values[TOOL].value is False

        await replica.write(MODEL, "gpt-4o", actor="b", reason="")
        await serving.write(TOOL, True, actor="a", reason="")
        both = await serving.current()
        assert both.values[MODEL].value == "gpt-4o"  # two revisions behind: re-read
        assert both.values[TOOL].value is True

        await serving.write(TOOL, False, actor="a", reason="")  # one behind: in place
        await serving.clear(MODEL, actor="a", reason="")
        kept = await serving.current()
        fresh = await BuiltinControlStore(replica_db, clock).current()
        assert kept.etag == fresh.etag == await replica.etag()
        assert list(kept.values.items()) == list(fresh.values.items())  # as a read, in order

        # New keys before, between and after the others, each brought in place: still in the
        # order a read gives.
        for key in (
            "support.tools.zz_last.enabled",
            "aaa.tools.first.enabled",
            "support.tools.middle.enabled",
            "support.tools.web-search.enabled",
        ):
            await serving.write(key, True, actor="a", reason="")
            kept = await serving.current()
            fresh = await BuiltinControlStore(replica_db, clock).current()
            assert kept.etag == fresh.etag, f"{key} brought the copy forward in place"
            assert list(kept.values) == sorted(kept.values) == list(fresh.values), key
        await serving.clear("support.tools.middle.enabled", actor="a", reason="")
        kept = await serving.current()
        assert list(kept.values) == list(
            (await BuiltinControlStore(replica_db, clock).current()).values
        )
    finally:
        await replica_db.close()


async def test_a_write_in_a_callers_transaction_is_served_as_it_commits(
    db: Database, clock: Clock
) -> None:
    """The copy takes the value in the commit's own step (``on_commit``), not when the caller
    gets round to ``committed()``; a write in a savepoint that rolled back is never taken."""
    store = BuiltinControlStore(db, clock, max_staleness=3600)  # no re-reads: only the copy
    await store.write(TOOL, True, actor="a", reason="")
    async with db.transaction() as session:
        bound = store.in_session(session)
        await bound.write(TOOL, False, actor="a", reason="kill switch")
        assert (await store.current()).values[TOOL].value is True  # not before the commit
    served = await store.current()
    assert served.values[TOOL].value is False  # committed() not called yet
    assert served.etag == await store.etag()

    async with db.transaction() as session:
        bound = store.in_session(session)

        async def rolled_back() -> None:
            async with session.begin_nested():
                await bound.write(TOOL, True, actor="a", reason="")
                raise RuntimeError("rolled back to the savepoint")

        with pytest.raises(RuntimeError):
            await rolled_back()
        await bound.write(MODEL, "small", actor="a", reason="")
    served = await store.current()
    assert served.values[TOOL].value is False
    assert served.values[MODEL].value == "small"
    assert served.etag == await store.etag()
    assert dict(served.values) == dict((await BuiltinControlStore(db, clock).current()).values)


async def test_a_write_is_three_statements_on_postgresql(db: Database, clock: Clock) -> None:
    """The revision bump carries the NOTIFY and one statement carries the upsert, the history
    row and its change-log line (data-modifying CTEs) on PostgreSQL; SQLite runs them one by
    one (no round trips there: calls in the process). What they write is the same (the
    tests above)."""
    store = BuiltinControlStore(db, clock)
    statements: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        statements.append(" ".join(statement.split()))

    event.listen(db.engine.sync_engine, "before_cursor_execute", record)
    try:
        await store.write(TOOL, False, actor="a", reason="kill switch")
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", record)
    expected = [
        "UPDATE control_revision SET",
        "SELECT control_values.",
        *(
            ["WITH line AS (INSERT INTO changes "]
            if db.dialect == "postgresql"
            else [
                "INSERT INTO control_values ",
                "INSERT INTO changes ",
                "INSERT INTO control_history ",
            ]
        ),
    ]
    assert len(statements) == len(expected), statements
    for statement, start in zip(statements, expected, strict=True):
        assert statement.startswith(start), statements
    if db.dialect == "postgresql":
        assert "INSERT INTO control_history " in statements[-1], statements
        assert "INSERT INTO control_values " in statements[-1], statements
    assert ("pg_notify" in statements[0]) == (db.dialect == "postgresql")
    [change] = await store.history(TOOL)
    assert (change.before, change.after, change.reason) == (None, False, "kill switch")


async def test_after_its_write_lock_a_transaction_reads_a_value_once(
    db: Database, clock: Clock
) -> None:
    """``take_write_lock`` bumps the revision before anything is read: the write that follows
    uses the value read after it (no second read) and that bump (one revision per write).
    A second write in the same transaction bumps again, so the copy still follows each one
    without a read; what is recorded is the same as without the lock."""
    store = BuiltinControlStore(db, clock, max_staleness=3600)  # no re-reads: only the copy
    await store.write(TOOL, True, actor="a", reason="on")
    assert (await store.current()).values[TOOL].value is True
    statements: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        statements.append(" ".join(statement.split()))

    event.listen(db.engine.sync_engine, "before_cursor_execute", record)
    try:
        async with db.transaction() as session:
            bound = store.in_session(session)
            await bound.take_write_lock()
            assert await bound.read(TOOL) is True
            off = await bound.write(TOOL, False, actor="a", reason="kill switch")
            assert await bound.read(TOOL) is False  # what it wrote, not read again
            model = await bound.write(MODEL, "small", actor="a", reason="")
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", record)
    reads = [s for s in statements if s.startswith("SELECT control_values.")]
    bumps = [i for i, s in enumerate(statements) if s.startswith("UPDATE control_revision")]
    first_read = statements.index(reads[0])
    assert len(reads) == 2, statements  # the tool's, once; the model's, after its own bump
    assert bumps[0] < first_read < bumps[1], statements
    assert (off.before, off.after, off.response["version"]) == (True, False, 2)
    assert (model.before, model.after) == (None, "small")
    assert (off.response["revision"], model.response["revision"]) == (2, 3)
    served = await store.current()
    assert (served.values[TOOL].value, served.values[MODEL].value) == (False, "small")
    assert served.etag == await store.etag()  # taken write by write, no read
    assert [(c.before, c.after) for c in await store.history(TOOL)] == [(True, False), (None, True)]


async def test_a_write_lock_taken_orders_other_writers_after_it(
    db: Database, test_database: DatabaseUnderTest, clock: Clock
) -> None:
    """From ``take_write_lock`` to the commit no other control write can land (another
    replica's waits), so the value the transaction read is still the value when it writes:
    the other writer's ``before`` is this one's ``after``. (Were the lock taken later, the
    other write would land between the read and the write, and this one's history row would
    claim a value before it that had been replaced.)"""
    store = BuiltinControlStore(db, clock)
    await store.write(MODEL, "large", actor="a", reason="")
    replica_db: Database = test_database.make()
    try:
        replica = BuiltinControlStore(replica_db, clock)
        other: asyncio.Task[WriteResult] | None = None
        async with db.transaction() as session:
            bound = store.in_session(session)
            await bound.take_write_lock()
            assert await bound.read(MODEL) == "large"
            other = asyncio.create_task(replica.write(MODEL, "medium", actor="b", reason=""))
            await asyncio.sleep(0.3)
            assert not other.done()  # waits for this transaction
            mine = await bound.write(MODEL, "small", actor="a", reason="")
        theirs = await other
    finally:
        await replica_db.close()
    assert (mine.before, mine.after) == ("large", "small")
    assert (theirs.before, theirs.after) == ("small", "medium")
    assert [(c.before, c.after) for c in await store.history(MODEL)] == [
        ("small", "medium"),
        ("large", "small"),
        (None, "large"),
    ]


async def test_a_write_lock_taken_for_a_key_reads_it_with_the_bump(
    db: Database, clock: Clock
) -> None:
    """``take_write_lock(key)`` reads the key's value too: on PostgreSQL in the bump's own
    statement, so the lock, the read and the write (with its history) are two statements;
    on SQLite the same steps one by one. What is written and recorded is the same."""
    store = BuiltinControlStore(db, clock, max_staleness=3600)
    await store.write(TOOL, True, actor="a", reason="on")
    statements: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        statements.append(" ".join(statement.split()))

    event.listen(db.engine.sync_engine, "before_cursor_execute", record)
    try:
        async with db.transaction() as session:
            bound = store.in_session(session)
            await bound.take_write_lock(TOOL)
            assert await bound.read(TOOL) is True
            off = await bound.write(TOOL, False, actor="a", reason="kill switch")
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", record)
    if db.dialect == "postgresql":
        assert len(statements) == 2, statements
        assert statements[0].startswith("WITH bumped AS (UPDATE control_revision"), statements
        assert "JOIN control_values" in statements[0], statements
    else:
        assert len(statements) == 5, statements
        assert statements[0].startswith("UPDATE control_revision"), statements
        assert statements[1].startswith("SELECT control_values."), statements
    assert (off.before, off.after, off.response["version"]) == (True, False, 2)
    assert off.response["revision"] == 2
    served = await store.current()
    assert served.values[TOOL].value is False
    assert served.etag == await store.etag()
    [change, _] = await store.history(TOOL)
    assert (change.before, change.after, change.reason) == (True, False, "kill switch")


@pytest.mark.parametrize("database_kind", ["postgres"])
async def test_a_value_read_with_the_bump_is_read_again_when_a_write_landed_first(
    db: Database, test_database: DatabaseUnderTest, clock: Clock
) -> None:
    """The bump's statement reads the value in the snapshot it took before waiting for
    another writer's lock: when that writer commits meanwhile, the value read is the one
    from before its write. The bump's revision tells (not the snapshot's plus one), and the
    value is read again: this write's ``before`` is the other's ``after``."""
    store = BuiltinControlStore(db, clock)
    await store.write(MODEL, "large", actor="a", reason="")
    replica_db: Database = test_database.make()
    try:
        replica = BuiltinControlStore(replica_db, clock)
        async with db.transaction() as session:
            bound = store.in_session(session)
            async with replica_db.transaction() as theirs:
                other = replica.in_session(theirs)
                await other.take_write_lock()
                await other.write(MODEL, "medium", actor="b", reason="")
                locking = asyncio.create_task(bound.take_write_lock(MODEL))
                await asyncio.sleep(0.3)
                assert not locking.done()  # waits for the other transaction
            await locking
            assert await bound.read(MODEL) == "medium"
            mine = await bound.write(MODEL, "small", actor="a", reason="")
    finally:
        await replica_db.close()
    assert (mine.before, mine.after, mine.response["version"]) == ("medium", "small", 3)
    assert [(c.before, c.after) for c in await store.history(MODEL)] == [
        ("medium", "small"),
        ("large", "medium"),
        (None, "large"),
    ]


async def test_concurrent_readers_share_one_refresh(db: Database, clock: Clock) -> None:
    # A copy that stays fresh for the test: on a busy machine the 50 readers took longer than
    # the default period, and a late one rightly refreshed again (CI saw two refreshes).
    store = BuiltinControlStore(db, clock, max_staleness=3600)
    await store.write(TOOL, True, actor="a", reason="")
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    try:
        snapshots = await asyncio.gather(*(store.current() for _ in range(50)))
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", count)
    assert {s.etag for s in snapshots} == {snapshots[0].etag}
    # One refresh for all 50: the revision, then the values, on one connection.
    assert len([s for s in statements if "control_revision" in s]) == 1
    assert len([s for s in statements if "FROM control_values" in s]) == 1


async def test_a_copy_that_cannot_take_a_committed_write_is_read_again(
    db: Database, clock: Clock, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The value from before a committed write is never served: if bringing the copy forward
    fails, the copy is dropped (the failure logged) and the next evaluation reads the store."""
    store = BuiltinControlStore(db, clock, max_staleness=3600)
    await store.write(TOOL, True, actor="a", reason="")
    assert (await store.current()).values[TOOL].value is True

    def broken(*_: object) -> None:
        raise RuntimeError("copy update failed")

    monkeypatch.setattr(store, "_after_own_write", broken)
    await store.write(TOOL, False, actor="a", reason="kill switch")
    assert "a callback after a commit failed" in caplog.text
    assert (await store.current()).values[TOOL].value is False
