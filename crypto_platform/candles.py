"""Candles: open, high, low, close and tick count per coin and source, at fixed intervals.

One definition of the intervals and of the `candles` table's partitions, shared by the
streaming job that builds candles, the repair that rebuilds them from MongoDB and the API
that reads them. A candle covers `[start, start + interval)` of event time, with starts at
multiples of its interval from the epoch (UTC), as Binance's klines.

A partition holds a bounded run of candles and a common read is one partition: a day of
1-minute candles (1,440), a day of 5-minute ones (288), a month of hourly ones (at most
744), a year of daily ones (366).
"""

from __future__ import annotations

import datetime as dt
import sys
from typing import Literal, get_args

CandleInterval = Literal["1m", "5m", "1h", "1d"]
INTERVAL_NAMES: tuple[CandleInterval, ...] = get_args(CandleInterval)
# Interval name -> length in ms, shortest first (the names are Binance's kline intervals).
INTERVALS: dict[str, int] = {
    "1m": 60_000,
    "5m": 300_000,
    "1h": 3_600_000,
    "1d": 86_400_000,
}
# The strftime pattern of an interval's partition (`period` column).
_PERIOD = {"1m": "%Y-%m-%d", "5m": "%Y-%m-%d", "1h": "%Y-%m", "1d": "%Y"}


def interval_of(length_ms: int) -> str:
    """The name of an interval from its length (how a candle row carries it through Spark)."""
    for name, ms in INTERVALS.items():
        if ms == length_ms:
            return name
    raise ValueError(f"no candle interval is {length_ms} ms long")


def candle_start(moment_ms: int, interval: str) -> int:
    """The start (ms) of the interval's candle holding `moment_ms`."""
    length = INTERVALS[interval]
    return moment_ms - moment_ms % length


def period_of(interval: str, start_ms: int) -> str:
    """The partition (`period`) of a candle: its UTC day, month or year, by interval."""
    return dt.datetime.fromtimestamp(start_ms / 1000, dt.UTC).strftime(_PERIOD[interval])


def periods_between(interval: str, since_ms: int, until_ms: int) -> list[str]:
    """The partitions of the interval's candles starting in `[since_ms, until_ms)`, newest first."""
    length = INTERVALS[interval]
    first = candle_start(since_ms, interval)
    if since_ms > first:
        first += length
    periods: list[str] = []
    start = first
    while start < until_ms:
        period = period_of(interval, start)
        if not periods or periods[-1] != period:
            periods.append(period)
        start = _next_period_start(interval, start)
    return periods[::-1]


def _next_period_start(interval: str, start_ms: int) -> int:
    """The first candle start of the partition after the one holding `start_ms`.

    After the calendar's last partition (year 9999), the end of time: nothing follows.
    """
    moment = dt.datetime.fromtimestamp(start_ms / 1000, dt.UTC)
    try:
        return _following(interval, moment)
    except (OverflowError, ValueError):
        return sys.maxsize


def _following(interval: str, moment: dt.datetime) -> int:
    if _PERIOD[interval] == "%Y-%m-%d":
        nxt = dt.datetime(moment.year, moment.month, moment.day, tzinfo=dt.UTC) + dt.timedelta(
            days=1
        )
    elif _PERIOD[interval] == "%Y-%m":
        months = moment.year * 12 + moment.month  # the next month, counted from year 0
        nxt = dt.datetime(months // 12, months % 12 + 1, 1, tzinfo=dt.UTC)
    else:
        nxt = dt.datetime(moment.year + 1, 1, 1, tzinfo=dt.UTC)
    return int(nxt.timestamp() * 1000)
