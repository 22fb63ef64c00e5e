"""RRULE expansion in Vietnam wall time: a UTC UNTIL (what calendar clients export) is an instant, not local time."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from meeting.services import recurrence


def _starts(rule: str) -> list[datetime]:
    # 08:00 local (01:00 UTC) every day from Monday 2026-11-23.
    start = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
    end = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    return [s for s, _ in recurrence.expand(start, end, rule, horizon_days=30, max_count=100)]


def test_utc_until_is_converted_to_local_wall_time() -> None:
    # 2026-11-25T03:00Z is 10:00 in Vietnam: the 08:00 meeting of the 25th is still inside the series.
    # Dropping the Z (reading 03:00 as local time) would lose that last occurrence.
    starts = _starts("FREQ=DAILY;UNTIL=20261125T030000Z")
    assert [s.day for s in starts] == [23, 24, 25]


def test_utc_until_before_the_local_start_ends_the_series_the_day_before() -> None:
    # 2026-11-25T00:30Z is 07:30 in Vietnam, before that day's 08:00 start.
    starts = _starts("FREQ=DAILY;UNTIL=20261125T003000Z")
    assert [s.day for s in starts] == [23, 24]


def test_local_until_stays_local() -> None:
    starts = _starts("FREQ=DAILY;UNTIL=20261125T080000")
    assert [s.day for s in starts] == [23, 24, 25]


def test_broken_utc_until_is_a_clear_error() -> None:
    with pytest.raises(recurrence.RRuleError) as exc:
        _starts("FREQ=DAILY;UNTIL=2026112Z")
    assert "RRULE" in str(exc.value)
