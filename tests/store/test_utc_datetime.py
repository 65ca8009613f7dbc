"""``UtcDateTime`` on SQLite: its own text conversions are SQLAlchemy's ``DATETIME``'s."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.dialects.sqlite import DATETIME, aiosqlite

from bot.store.tables import UtcDateTime, sqlite_utc_text

SQLITE = aiosqlite.dialect()
WRITE = UtcDateTime().dialect_impl(SQLITE).bind_processor(SQLITE)
READ = UtcDateTime().dialect_impl(SQLITE).result_processor(SQLITE, None)
# What SQLAlchemy itself does: the time in UTC through DATETIME's formatting, and back.
SQLALCHEMY_WRITE = DATETIME().bind_processor(SQLITE)
SQLALCHEMY_READ = DATETIME().result_processor(SQLITE, None)

TIMES = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.timezones()
)


@given(TIMES)
def test_a_time_is_written_as_sqlalchemy_writes_it(value: datetime) -> None:
    assert WRITE is not None
    assert SQLALCHEMY_WRITE is not None
    expected = SQLALCHEMY_WRITE(value.astimezone(UTC))
    assert WRITE(value) == expected
    assert WRITE(value) == expected  # again, from the recent times it keeps


@given(TIMES)
def test_a_written_time_reads_back_as_the_same_instant_in_utc(value: datetime) -> None:
    assert READ is not None
    assert SQLALCHEMY_READ is not None
    text = sqlite_utc_text(value)
    read = READ(text)
    assert read == value.astimezone(UTC)  # (not ``value``: an ambiguous local time is never equal)
    assert read.tzinfo is UTC
    assert read == SQLALCHEMY_READ(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    "text",
    [
        "2026-12-06 12:00:00",  # CURRENT_TIMESTAMP's form, read here
        "2026-12-06",  # the others by SQLAlchemy
        "2026-12-06 12:00:00.5",
        "2026-12-06 12:00:00.123",
    ],
)
def test_other_stored_forms_are_read_as_sqlalchemy_reads_them(text: str) -> None:
    assert READ is not None
    assert SQLALCHEMY_READ is not None
    read = READ(text)
    assert read == SQLALCHEMY_READ(text).replace(tzinfo=UTC)
    assert read.tzinfo is UTC
    assert READ(None) is None


def test_none_is_kept_and_a_naive_time_refused() -> None:
    assert WRITE is not None
    assert WRITE(None) is None
    with pytest.raises(ValueError, match="naive"):
        WRITE(datetime(2026, 1, 1))
    aware = datetime(2026, 1, 1, 5, 30, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    assert WRITE(aware) == "2026-01-01 00:00:00.000000"
