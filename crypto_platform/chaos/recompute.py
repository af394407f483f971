"""What Cassandra's windows and latest rows should be, recomputed from MongoDB's ticks.

MongoDB is the store of record; the chaos run recomputes from its ticks of the
acknowledged identities with the streaming job's own window math (`batch_partials`,
`window_rows`, `current_window`), so a disagreement is the pipeline's, not this check's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from crypto_platform.settings import Settings
from crypto_platform.spark.cassandra_writer import price_version
from crypto_platform.spark.windowed_means import batch_partials, current_window, window_rows
from crypto_platform.storage import mongo

TickKey = tuple[str, str, int]  # source, symbol, event_time_ms: the tick's identity
Series = tuple[str, str]  # symbol, source: one coin's windows from one source
WindowKey = tuple[str, str, int]  # symbol, source, window start (epoch s)
RELATIVE = 1e-9
TICK_FIELDS = ("source", "symbol", "event_time_ms", "price")


@dataclass(frozen=True)
class WindowValue:
    """A window's tick count and its three means."""

    tick_count: int
    arithmetic_mean: float
    geometric_mean: float
    harmonic_mean: float

    def matches(self, other: WindowValue) -> bool:
        """Same count, each mean within `RELATIVE`."""
        return self.tick_count == other.tick_count and all(
            math.isclose(getattr(self, name), getattr(other, name), rel_tol=RELATIVE)
            for name in ("arithmetic_mean", "geometric_mean", "harmonic_mean")
        )


@dataclass(frozen=True)
class Expected:
    """Every window, each coin's newest tick (event ms, price), each series' current window."""

    windows: dict[WindowKey, WindowValue]
    latest_prices: dict[str, tuple[int, float]]
    latest_windows: dict[Series, tuple[int, WindowValue]]  # (window start s, value)


def stored_ticks(settings: Settings, keys: set[TickKey]) -> pd.DataFrame:
    """MongoDB's ticks whose identity is in `keys` (source, symbol, event_time_ms, price)."""
    with mongo.connect(settings) as client:
        fields = dict.fromkeys(TICK_FIELDS, 1) | {"_id": 0}
        docs = mongo.prices_collection(client, settings).find({}, fields).batch_size(10_000)
        rows = [doc for doc in docs if (doc["source"], doc["symbol"], doc["event_time_ms"]) in keys]
    return pd.DataFrame(rows, columns=list(TICK_FIELDS))


def expected(ticks: pd.DataFrame, window_s: int, slide_s: int) -> Expected:
    """The windows and latest rows the job must have written for `ticks`."""
    windows: dict[WindowKey, WindowValue] = {}
    latest_windows: dict[Series, tuple[int, WindowValue]] = {}
    ordered = ticks.sort_values(["symbol", "source", "event_time_ms"], kind="stable")
    for (symbol, source), group in ordered.groupby(["symbol", "source"], sort=True):
        series = (str(symbol), str(source))
        partials = batch_partials(group, window_s * 1000, slide_s * 1000)
        rows = window_rows(
            *series,
            {int(start): tuple(partial) for start, *partial in partials.itertuples()},
            window_s * 1000,
        )
        last_event: dict[int, int] = {}
        for row in rows.itertuples():
            start = int(row.window_start_ms)
            windows[(*series, start // 1000)] = WindowValue(
                int(row.tick_count),
                float(row.arithmetic_mean),
                float(row.geometric_mean),
                float(row.harmonic_mean),
            )
            last_event[start] = int(row.last_event_ms)
        current = current_window(last_event) // 1000
        latest_windows[series] = (current, windows[(*series, current)])
    latest_prices: dict[str, tuple[int, float]] = {}
    for symbol, group in ordered.groupby("symbol", sort=True):
        newest = max(group.itertuples(), key=lambda t: price_version(t.event_time_ms, t.source))
        latest_prices[str(symbol)] = (int(newest.event_time_ms), float(newest.price))
    return Expected(windows, latest_prices, latest_windows)
