"""Cassandra's windows and latest rows against their recomputation (`recompute`).

Every window either side holds must agree on its tick count and its three means; each
coin's `latest_prices` row must be its newest tick and its `latest_aggregates` row of each
source its current window.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from cassandra.cluster import Session

from crypto_platform.chaos.recompute import RELATIVE, Expected, Series, WindowKey, WindowValue
from crypto_platform.settings import Settings
from crypto_platform.storage import cassandra, cassandra_queries

EXAMPLES = 5


def _iso(start_s: int) -> str:
    return dt.datetime.fromtimestamp(start_s, dt.UTC).isoformat()


def _value(value: WindowValue | None) -> dict[str, Any] | None:
    return None if value is None else asdict(value)


@dataclass(frozen=True)
class WindowCheck:
    """aggregates_by_symbol against the recomputed windows."""

    checked: int
    wrong: list[tuple[WindowKey, WindowValue | None, WindowValue | None]]  # stored, expected

    def summary(self) -> dict[str, object]:
        return {
            "checked": self.checked,
            "wrong": len(self.wrong),
            "wrong_examples": [
                {
                    "symbol": symbol,
                    "source": source,
                    "window_start": _iso(start),
                    "stored": _value(stored),
                    "expected": _value(expected),
                }
                for (symbol, source, start), stored, expected in self.wrong[:EXAMPLES]
            ],
        }


def compare_windows(
    expected: dict[WindowKey, WindowValue], stored: dict[WindowKey, WindowValue]
) -> WindowCheck:
    """Every window either side holds; wrong where one lacks it or they differ."""
    windows = sorted(set(expected) | set(stored))
    wrong = []
    for window in windows:
        got, want = stored.get(window), expected.get(window)
        if got is None or want is None or not got.matches(want):
            wrong.append((window, got, want))
    return WindowCheck(len(windows), wrong)


@dataclass(frozen=True)
class LatestCheck:
    """latest_prices and latest_aggregates against the recomputation, per coin."""

    checked: int
    wrong: list[dict[str, Any]]  # table, symbol, stored, expected

    def summary(self) -> dict[str, object]:
        return {
            "checked": self.checked,
            "wrong": len(self.wrong),
            "wrong_examples": self.wrong[:EXAMPLES],
        }


def compare_latest(
    expected: Expected,
    prices: dict[str, tuple[int, float]],
    aggregates: dict[Series, tuple[int, WindowValue]],
) -> LatestCheck:
    """Each coin's latest rows (stored) against its newest tick and current windows."""
    wrong: list[dict[str, Any]] = []
    symbols = sorted(set(expected.latest_prices) | set(prices))
    for symbol in symbols:
        got_price, want_price = prices.get(symbol), expected.latest_prices.get(symbol)
        if (
            got_price is None
            or want_price is None
            or got_price[0] != want_price[0]
            or not math.isclose(got_price[1], want_price[1], rel_tol=RELATIVE)
        ):
            wrong.append({"table": "latest_prices", "symbol": symbol,
                          "stored": got_price, "expected": want_price})  # fmt: skip
    series = sorted(set(expected.latest_windows) | set(aggregates))
    for symbol, source in series:
        got, want = aggregates.get((symbol, source)), expected.latest_windows.get((symbol, source))
        if got is None or want is None or got[0] != want[0] or not got[1].matches(want[1]):
            wrong.append({
                "table": "latest_aggregates", "symbol": symbol, "source": source,
                "stored": got and (_iso(got[0]), asdict(got[1])),
                "expected": want and (_iso(want[0]), asdict(want[1])),
            })  # fmt: skip
    return LatestCheck(len(symbols) + len(series), wrong)


def stored_window(row: dict[str, Any]) -> tuple[int, WindowValue]:
    """A stored window row as (start, epoch s) and its count and means."""
    start = int(row["window_start"].replace(tzinfo=dt.UTC).timestamp())
    value = WindowValue(
        int(row["tick_count"]),
        row["arithmetic_mean"],
        row["geometric_mean"],
        row["harmonic_mean"],
    )
    return start, value


def stored_windows(
    session: Session, settings: Settings, series: Iterable[Series], since_ms: int, until_ms: int
) -> dict[WindowKey, WindowValue]:
    """aggregates_by_symbol's windows of `series` starting on the days of [since, until)."""
    stored: dict[WindowKey, WindowValue] = {}
    for symbol, source in sorted(series):
        for day in cassandra_queries.days_between(since_ms, until_ms):
            for row in cassandra_queries.aggregate_windows(
                session, settings.cassandra_keyspace, symbol, source,
                settings.aggregate_window_s, day,
            ):  # fmt: skip
                start, value = stored_window(row)
                stored[(symbol, source, start)] = value
    return stored


def check_cassandra(settings: Settings, expected: Expected) -> tuple[WindowCheck, LatestCheck]:
    """Read the window and latest rows the recomputation covers, and compare them."""
    keyspace = settings.cassandra_keyspace
    latest_windows: dict[Series, tuple[int, WindowValue]] = {}
    starts = [start for *_, start in expected.windows] or [0]
    series = {(symbol, source) for symbol, source, _ in expected.windows}
    cluster, session = cassandra.connect(settings)
    try:
        stored = stored_windows(
            session, settings, series, min(starts) * 1000, max(starts) * 1000 + 1
        )
        for row in cassandra_queries.latest_aggregates(session, keyspace):
            latest_windows[(row["symbol"], row["source"])] = stored_window(row)
        prices = {
            row["symbol"]: (row["event_time_ms"], row["price"])
            for row in cassandra_queries.latest_prices(session, keyspace)
        }
    finally:
        cluster.shutdown()
    return (
        compare_windows(expected.windows, stored),
        compare_latest(expected, prices, latest_windows),
    )
