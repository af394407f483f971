"""The candles table's partitions: a range reads exactly the periods its candles live in."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from crypto_platform.candles import INTERVALS, candle_start, period_of, periods_between

# From 1970 to beyond 2100, and ranges from nothing to a few years.
moments = st.integers(0, 4_200_000_000_000)
spans = st.integers(0, 3 * 366 * INTERVALS["1d"])


@given(st.sampled_from(list(INTERVALS)), moments, spans)
def test_a_range_names_every_partition_its_candles_are_in_and_no_other(
    interval: str, since_ms: int, span_ms: int
) -> None:
    until_ms = since_ms + span_ms
    length = INTERVALS[interval]
    first = candle_start(since_ms + length - 1, interval)  # the first start at or after since
    starts = range(first, until_ms, length)
    # Every start of a long range would take long: its ends and a sample between.
    sample = {*starts[:50], *starts[-50:], *starts[:: max(1, len(starts) // 500)]}

    periods = periods_between(interval, since_ms, until_ms)

    assert {period_of(interval, start) for start in sample} <= set(periods)
    assert periods == sorted(set(periods), reverse=True)  # newest first, each once
    if starts:
        assert periods[0] == period_of(interval, starts[-1])
        assert periods[-1] == period_of(interval, starts[0])
    else:
        assert periods == []


def test_a_day_of_minutes_is_one_partition_and_a_week_of_hours_at_most_two() -> None:
    day = int(dt.datetime(2026, 3, 31, tzinfo=dt.UTC).timestamp() * 1000)
    assert periods_between("1m", day, day + INTERVALS["1d"]) == ["2026-03-31"]
    assert periods_between("1h", day - 3 * INTERVALS["1d"], day + 4 * INTERVALS["1d"]) == [
        "2026-04",
        "2026-03",
    ]
    assert periods_between("1d", day, day + 400 * INTERVALS["1d"]) == ["2027", "2026"]


def test_the_calendars_last_partitions_end_the_list() -> None:
    last_hour = int(dt.datetime(9999, 12, 31, 23, tzinfo=dt.UTC).timestamp() * 1000)
    assert periods_between("1m", last_hour, last_hour + INTERVALS["1h"]) == ["9999-12-31"]
    assert periods_between("1h", last_hour, last_hour + INTERVALS["1h"]) == ["9999-12"]
    assert periods_between("1d", last_hour - INTERVALS["1d"], last_hour) == ["9999"]
