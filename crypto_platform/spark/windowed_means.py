"""Per coin, the moving means over sliding windows, kept in Spark's state store.

One stateful processor (`transformWithStateInPandas`, event time) sees every tick of a
coin once, passes it on for the raw price tables, and folds it into the partial sums of
each window that holds it (a `MapState` from window start to partials, in the query's
checkpoint). Each batch emits the windows it changed, whole (Update mode). A timer at the
window's end removes it once the watermark passes: no later tick can reach it, since
Spark drops ticks older than the watermark before they get here.

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


def window_rows(symbol: str, windows: dict[int, tuple], window_ms: int) -> pd.DataFrame:
    """The output rows of the windows a batch changed, means computed from their partials."""
    starts = np.fromiter(windows, dtype=np.int64, count=len(windows))
    p = pd.DataFrame(list(windows.values()), columns=PARTIAL_NAMES)
    count = p["tick_count"].to_numpy(dtype=np.float64)
    return _frame(
        WINDOW,
        {
            "symbol": symbol,
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
    """Grouped by symbol: ticks pass through, windows are folded into state and emitted."""

    def __init__(self, window_s: int, slide_s: int) -> None:
        self.window_ms, self.slide_ms = window_s * 1000, slide_s * 1000

    def init(self, handle: StatefulProcessorHandle) -> None:
        self.handle = handle
        self.windows = handle.getMapState("windows", "start_ms long", PARTIALS)

    def handleInputRows(
        self, key: Any, rows: Iterator[pd.DataFrame], timerValues: TimerValues
    ) -> Iterator[pd.DataFrame]:
        (symbol,) = key
        ticks = pd.concat(list(rows), ignore_index=True)
        yield _frame(TICK, {name: ticks[name].to_numpy() for name in ticks.columns}, len(ticks))
        changed: dict[int, tuple] = {}
        for start, *partial in batch_partials(ticks, self.window_ms, self.slide_ms).itertuples():
            new = tuple(partial)
            if self.windows.containsKey((start,)):
                stored = self.windows.getValue((start,))
                assert stored is not None
                new = merge(stored, new)
            else:
                self.handle.registerTimer(int(start) + self.window_ms)
            self.windows.updateValue((start,), new)
            changed[int(start)] = new
        yield window_rows(symbol, changed, self.window_ms)

    def handleExpiredTimer(
        self, key: Any, timerValues: TimerValues, expiredTimerInfo: ExpiredTimerInfo
    ) -> Iterator[pd.DataFrame]:
        """The watermark passed the window's end: it is final in Cassandra, so drop its state."""
        self.windows.removeKey((expiredTimerInfo.getExpiryTimeInMs() - self.window_ms,))
        return iter([])

    def close(self) -> None:
        """Nothing to release: the state lives in Spark's store."""
