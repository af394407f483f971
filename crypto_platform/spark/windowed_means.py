"""Per coin and source, the moving means over sliding windows, kept in Spark's state store.

One stateful processor (`transformWithStateInPandas`, event time) sees every tick of a
coin from one source (a window never mixes sources: Binance's USDT quotes, Coinranking's
USD prices and the simulator's are each averaged apart), drops the ones it has seen
before, passes the rest on for the raw price tables, and folds them into the partial sums
of each window that holds them (a `MapState` from window start to partials, in the query's
checkpoint). Each batch emits the windows it changed, whole (Update mode). Timers at slide
boundaries remove what the watermark has passed: Spark drops ticks older than the
watermark before they get here, so no later tick can reach a window that ended, nor repeat
an identity from before it.

Duplicates are checked here rather than by `dropDuplicates`: Spark's operator scans its
whole store for expired keys on every batch (with a 10 min watermark at 1,000 ticks/s,
600,000 rows per batch, which doubled the batch time), while the identities kept here sit
in one row per coin, source and slide (their event times, as an array), read and written
only for the slides a batch touches and dropped whole by a timer.

Partial sums make every mean exact however the ticks are split into batches: arithmetic
`sum / n`, geometric `exp(sum(log p) / n)`, harmonic `n / sum(1 / p)`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
from pyspark.sql.streaming.stateful_processor import (
    ExpiredTimerInfo,
    StatefulProcessor,
    StatefulProcessorHandle,
    TimerValues,
)

from crypto_platform.spark.kafka_source import TICK_COLUMNS
from crypto_platform.spark.windows import window_members

TICK = "tick"
WINDOW = "window"
PARTIALS = (
    "tick_count long, price_sum double, log_sum double, inverse_sum double, min_price double, "
    "max_price double, first_ms long, first_price double, last_ms long, last_price double"
)
WINDOW_COLUMNS = (
    "window_start_ms long, window_end_ms long, arithmetic_mean double, geometric_mean double, "
    "harmonic_mean double, tick_count long, min_price double, max_price double, "
    "first_price double, last_price double, last_event_ms long"
)
_TICK_COLUMNS = TICK_COLUMNS.rsplit(", ", 1)[0]  # without invalid_reason: only valid ticks here
# One schema for both kinds of row, so one query and one write pass serve all four tables.
OUTPUT = f"kind string, {_TICK_COLUMNS}, {WINDOW_COLUMNS}"
_TYPES = dict(column.split() for column in OUTPUT.split(", "))
PARTIAL_NAMES = [column.split()[0] for column in PARTIALS.split(", ")]
IDENTITY_KEY = "slide_start_ms long"
IDENTITY_VALUE = "event_times_ms binary"  # int64 array: ticks seen in the slide


def _frame(kind: str, columns: dict[str, Any], rows: int) -> pd.DataFrame:
    """Every output column, in order, typed; those the kind does not have are typed nulls.

    Arrow refuses a frame with a missing column or an untyped null, so both kinds fill in
    the other's columns: nullable Int64 for longs, NaN for doubles, None for strings.
    """
    frame: dict[str, Any] = {}
    for name, type_ in _TYPES.items():
        value = kind if name == "kind" else columns.get(name)
        if type_ == "long":
            frame[name] = pd.array([pd.NA] * rows if value is None else value, dtype="Int64")
        elif type_ == "double":
            frame[name] = np.full(rows, np.nan) if value is None else value
        elif value is None or isinstance(value, str):
            frame[name] = np.array([value] * rows, dtype=object)
        else:
            frame[name] = value
    return pd.DataFrame(frame)


def batch_partials(ticks: pd.DataFrame, window_ms: int, slide_ms: int) -> pd.DataFrame:
    """Partial sums per window start for one coin's ticks of one batch (index: start ms)."""
    times = ticks["event_time_ms"].to_numpy(dtype=np.int64)
    prices = ticks["price"].to_numpy(dtype=np.float64)
    index, starts = window_members(times, window_ms, slide_ms)
    members = pd.DataFrame(
        {"start": starts, "ms": times[index], "price": prices[index]}
    ).sort_values(["start", "ms"], kind="stable")
    members["log"] = np.log(members["price"])
    members["inverse"] = 1.0 / members["price"]
    grouped = members.groupby("start", sort=True)
    return pd.DataFrame(
        {
            "tick_count": grouped.size(),
            "price_sum": grouped["price"].sum(),
            "log_sum": grouped["log"].sum(),
            "inverse_sum": grouped["inverse"].sum(),
            "min_price": grouped["price"].min(),
            "max_price": grouped["price"].max(),
            "first_ms": grouped["ms"].first(),
            "first_price": grouped["price"].first(),
            "last_ms": grouped["ms"].last(),
            "last_price": grouped["price"].last(),
        }
    )


def current_window(last_event_ms: dict[int, int]) -> int:
    """Of a coin's windows (start ms -> last event ms), the one current as of its newest tick.

    That is the window which holds the newest tick and started earliest: it covers the most
    recent full window length. The streaming job and `latest_aggregates`' writer both pick
    it by this rule.
    """
    newest = max(last_event_ms.values())
    return min(start for start, last in last_event_ms.items() if last == newest)


def merge(old: tuple, new: tuple) -> tuple:
    """Two partials of one window as one (the earlier-seen tick wins a tie of event times)."""
    o, n = dict(zip(PARTIAL_NAMES, old, strict=True)), dict(zip(PARTIAL_NAMES, new, strict=True))
    first = o if o["first_ms"] <= n["first_ms"] else n
    last = n if n["last_ms"] >= o["last_ms"] else o
    return (
        o["tick_count"] + n["tick_count"],
        o["price_sum"] + n["price_sum"],
        o["log_sum"] + n["log_sum"],
        o["inverse_sum"] + n["inverse_sum"],
        min(o["min_price"], n["min_price"]),
        max(o["max_price"], n["max_price"]),
        first["first_ms"],
        first["first_price"],
        last["last_ms"],
        last["last_price"],
    )


def window_rows(
    symbol: str, source: str, windows: dict[int, tuple], window_ms: int
) -> pd.DataFrame:
    """The output rows of the windows a batch changed, means computed from their partials."""
    starts = np.fromiter(windows, dtype=np.int64, count=len(windows))
    p = pd.DataFrame(list(windows.values()), columns=PARTIAL_NAMES)
    count = p["tick_count"].to_numpy(dtype=np.float64)
    return _frame(
        WINDOW,
        {
            "symbol": symbol,
            "source": source,
            "window_start_ms": starts,
            "window_end_ms": starts + window_ms,
            "arithmetic_mean": p["price_sum"].to_numpy() / count,
            "geometric_mean": np.exp(p["log_sum"].to_numpy() / count),
            "harmonic_mean": count / p["inverse_sum"].to_numpy(),
            "tick_count": p["tick_count"].to_numpy(),
            "min_price": p["min_price"].to_numpy(),
            "max_price": p["max_price"].to_numpy(),
            "first_price": p["first_price"].to_numpy(),
            "last_price": p["last_price"].to_numpy(),
            "last_event_ms": p["last_ms"].to_numpy(),
        },
        len(windows),
    )


class WindowedMeans(StatefulProcessor):
    """Grouped by coin and source: ticks pass through, windows are folded into state, emitted."""

    def __init__(self, window_s: int, slide_s: int) -> None:
        self.window_ms, self.slide_ms = window_s * 1000, slide_s * 1000

    def init(self, handle: StatefulProcessorHandle) -> None:
        self.handle = handle
        self.windows = handle.getMapState("windows", "start_ms long", PARTIALS)
        self.identities = handle.getMapState("identities", IDENTITY_KEY, IDENTITY_VALUE)
        self.timers: set[int] = set()  # the current coin's, read afresh for each batch

    def handleInputRows(
        self, key: Any, rows: Iterator[pd.DataFrame], timerValues: TimerValues
    ) -> Iterator[pd.DataFrame]:
        symbol, source = key
        # Window ends and slide ends share timestamps: register each once (Spark warns on
        # every repeat).
        self.timers = set(self.handle.listTimers())
        ticks = self._first_seen(pd.concat(list(rows), ignore_index=True))
        if ticks.empty:
            return
        yield _frame(TICK, {name: ticks[name].to_numpy() for name in ticks.columns}, len(ticks))
        # The coin's open windows in one read (a few dozen at most: those the watermark has
        # not passed), rather than a round trip to the state store per window.
        stored = {start: partial for (start,), partial in self.windows.iterator()}
        changed: dict[int, tuple] = {}
        for start, *partial in batch_partials(ticks, self.window_ms, self.slide_ms).itertuples():
            start, new = int(start), tuple(partial)
            if start in stored:
                new = merge(stored[start], new)
            else:
                self._expire_at(start + self.window_ms)
            self.windows.updateValue((start,), new)
            changed[start] = new
        # The coin's current window goes out with every batch of the coin, changed or not:
        # `latest_aggregates` is written from each batch's newest window, and a batch of
        # late ticks alone must not make an older window the latest.
        known = {**stored, **changed}
        last = PARTIAL_NAMES.index("last_ms")
        current = current_window({start: partial[last] for start, partial in known.items()})
        yield window_rows(symbol, source, {**changed, current: known[current]}, self.window_ms)

    def _first_seen(self, ticks: pd.DataFrame) -> pd.DataFrame:
        """The ticks not seen before (nor earlier in this batch); their identities kept.

        A tick's identity within its coin and source is its event time (the MongoDB
        sink's `_id` rule); identities are read and written per slide.
        """
        times = ticks["event_time_ms"].to_numpy(dtype=np.int64)
        keep = ~ticks.duplicated(["event_time_ms"]).to_numpy()
        slides = times - times % self.slide_ms
        for slide, rows in pd.Series(slides).groupby(slides).indices.items():
            key = (int(slide),)
            before = self._identities(key)
            keep[rows] &= ~np.isin(times[rows], before)
            seen = np.concatenate([before, times[rows][keep[rows]]])
            self.identities.updateValue(key, (seen.tobytes(),))
        return ticks[keep]

    def _identities(self, slide: tuple[int]) -> np.ndarray:
        """Event times seen in a slide; a new slide gets its expiry timer."""
        if self.identities.containsKey(slide):
            stored = self.identities.getValue(slide)
            return np.frombuffer(stored[0] if stored else b"", np.int64)
        self._expire_at(slide[0] + self.slide_ms)
        return np.empty(0, dtype=np.int64)

    def _expire_at(self, moment_ms: int) -> None:
        if moment_ms not in self.timers:
            self.handle.registerTimer(moment_ms)
            self.timers.add(moment_ms)

    def handleExpiredTimer(
        self, key: Any, timerValues: TimerValues, expiredTimerInfo: ExpiredTimerInfo
    ) -> Iterator[pd.DataFrame]:
        """The watermark passed a slide boundary: drop what no tick can reach any more.

        That is the window ending there (it is final in Cassandra) and the identities of
        the slides before it.
        """
        boundary = expiredTimerInfo.getExpiryTimeInMs()
        self.windows.removeKey((boundary - self.window_ms,))
        for (slide,) in list(self.identities.keys()):
            if slide + self.slide_ms <= boundary:
                self.identities.removeKey((slide,))
        return iter([])

    def close(self) -> None:
        """Nothing to release: the state lives in Spark's store."""
