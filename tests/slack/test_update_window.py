"""An incident's counts-only changes at most once per window, the latest one; every other
change at once; nothing held is lost at flush or shutdown."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.incidents.changes import ChangeKind, IncidentChange, Note
from bot.slack.update_window import UpdateWindow, counts_only

WINDOW = 0.3


class Recorder:
    """The announcer behind the window: what it was given, in order."""

    def __init__(self) -> None:
        self.said: list[IncidentChange] = []
        self.failing = False

    async def __call__(self, changes: list[IncidentChange]) -> None:
        if self.failing:
            raise RuntimeError("Slack is down")
        self.said.extend(changes)

    def of(self, incident_id: int) -> list[IncidentChange]:
        return [c for c in self.said if c.incident_id == incident_id]


def change(incident_id: int, *kinds: ChangeKind, note: str | None = None) -> IncidentChange:
    return IncidentChange(incident_id, set(kinds), [Note(note)] if note else [])


async def until(check: Callable[[], bool], seconds: float = 10.0) -> None:
    for _ in range(int(seconds / 0.02)):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("timed out")


def test_counts_only_means_no_notes_and_no_change_of_state() -> None:
    assert counts_only(change(1, ChangeKind.UPDATED))
    assert counts_only(change(1))  # an alert seen again: nothing but the last-seen time
    assert not counts_only(change(1, ChangeKind.UPDATED, note="disable_tool applied"))
    for kind in (ChangeKind.OPENED, ChangeKind.REOPENED, ChangeKind.STATUS, ChangeKind.RESOLVED):
        assert not counts_only(change(1, ChangeKind.UPDATED, kind))


async def test_a_busy_incident_gets_one_update_per_window_the_latest() -> None:
    said = Recorder()
    window = UpdateWindow(said, every=WINDOW, name="test-updates")
    await window.incidents_changed([change(1, ChangeKind.OPENED)])
    updates = [change(1, ChangeKind.UPDATED) for _ in range(20)]
    for update in updates:  # twenty engine batches inside the window
        await window.incidents_changed([update])
    # A quiet incident is not held back by the busy one's window.
    quiet = change(2, ChangeKind.UPDATED)
    await window.incidents_changed([quiet])
    assert said.of(1) == [said.said[0]]
    assert said.of(2) == [quiet]
    assert window.held == 1

    await until(lambda: len(said.of(1)) == 2)
    assert said.of(1)[1] is updates[-1]
    assert window.held == 0
    # Its window over and nothing held: the next update goes out as it comes.
    await asyncio.sleep(WINDOW * 1.5)
    await window.incidents_changed([later := change(1, ChangeKind.UPDATED)])
    assert said.of(1)[-1] is later
    await window.drain()
    assert len(said.of(1)) == 3


async def test_a_change_of_state_or_a_note_goes_at_once_and_replaces_what_is_held() -> None:
    said = Recorder()
    window = UpdateWindow(said, every=60.0, name="test-updates")
    await window.incidents_changed([change(1, ChangeKind.OPENED)])
    await window.incidents_changed([change(1, ChangeKind.UPDATED)])
    assert window.held == 1
    await window.incidents_changed([noted := change(1, note="disable_tool applied")])
    assert said.of(1)[-1] is noted
    assert window.held == 0
    await window.incidents_changed([change(1, ChangeKind.UPDATED)])
    await window.incidents_changed([resolved := change(1, ChangeKind.UPDATED, ChangeKind.RESOLVED)])
    assert said.of(1)[-1] is resolved
    assert window.held == 0
    await window.drain()
    assert len(said.of(1)) == 3  # the held updates were shown by the changes after them


async def test_flush_and_drain_announce_what_is_held() -> None:
    said = Recorder()
    window = UpdateWindow(said, every=60.0, name="test-updates")
    await window.incidents_changed([change(1, ChangeKind.OPENED), change(2, ChangeKind.OPENED)])
    await window.incidents_changed([one := change(1, ChangeKind.UPDATED)])
    await window.flush()
    assert said.of(1)[-1] is one
    assert window.held == 0
    # Flushed, the window still holds: the next counts-only change waits again.
    await window.incidents_changed([change(2, ChangeKind.UPDATED)])
    await window.incidents_changed([two := change(2, ChangeKind.UPDATED)])
    assert window.held == 1
    await window.drain()
    assert said.of(2)[-1] is two
    assert window.held == 0
    await window.drain()  # twice is harmless
    # Shutting down: nothing is held back for a window any more.
    await window.incidents_changed([three := change(2, ChangeKind.UPDATED)])
    assert said.of(2)[-1] is three
    assert window.held == 0


async def test_a_failing_announcement_of_held_updates_is_logged_and_the_window_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    said = Recorder()
    window = UpdateWindow(said, every=WINDOW, name="test-updates")
    await window.incidents_changed([change(1, ChangeKind.OPENED)])
    await window.incidents_changed([change(1, ChangeKind.UPDATED)])
    said.failing = True
    with caplog.at_level(logging.ERROR, logger="bot.slack.update_window"):
        await until(lambda: window.held == 0)
        await until(lambda: "could not announce 1 held" in caplog.text)
    said.failing = False
    await window.incidents_changed([change(1, ChangeKind.UPDATED)])
    await window.incidents_changed([last := change(1, ChangeKind.UPDATED)])
    await until(lambda: said.of(1)[-1] is last)
    await window.drain()


KINDS = st.sets(st.sampled_from(list(ChangeKind)), max_size=2)


@settings(max_examples=300, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.integers(1, 3),  # incident
            KINDS,
            st.booleans(),  # with a note
            st.floats(0.0, 4.0),  # seconds since the step before
        ),
        max_size=40,
    )
)
def test_every_incident_ends_on_its_latest_change_and_waits_are_a_window_apart(
    steps: list[tuple[int, set[ChangeKind], bool, float]],
) -> None:
    """On a clock the test moves (the window's own task never gets to run): each incident's
    last announcement is its latest change, once drained; no change is announced twice; and a
    counts-only change announced as it came is a window after the incident's announcement
    before it."""
    every = 5.0

    async def run() -> None:
        now = [0.0]
        said = Recorder()
        when: list[float] = []

        async def announce(changes: list[IncidentChange]) -> None:
            await said(changes)
            when.extend(now[0] for _ in changes)

        window = UpdateWindow(announce, every=every, name="test-updates", clock=lambda: now[0])
        given_changes: list[IncidentChange] = []
        for incident_id, kinds, noted, gap in steps:
            now[0] += gap
            given_changes.append(change(incident_id, *kinds, note="a note" if noted else None))
            await window.incidents_changed([given_changes[-1]])
        drained_at = len(said.said)
        await window.drain()

        assert len({id(c) for c in said.said}) == len(said.said)
        for incident_id in {c.incident_id for c in given_changes}:
            latest = [c for c in given_changes if c.incident_id == incident_id][-1]
            assert said.of(incident_id)[-1] is latest
        last_at: dict[int, float] = {}
        for n, (announced, at) in enumerate(zip(said.said, when, strict=True)):
            before = last_at.get(announced.incident_id)
            if n < drained_at and counts_only(announced) and before is not None:
                assert at - before >= every, (announced, at, before)
            last_at[announced.incident_id] = at

    asyncio.run(run())
