"""Per coin and source, the moving means over sliding windows, kept in Spark's state store.

One stateful processor (`transformWithStateInPandas`, event time) sees every tick of a
bucket of coins from one source (a window never mixes sources: Binance's USDT quotes,
Coinranking's USD prices and the simulator's are each averaged apart), drops the ones it
has seen before, passes the rest on for the raw price tables, and folds them into the
partial sums of each coin's windows that hold them, and of its open candles (a candle is
a window as long as its slide). Each batch emits the windows and candles it changed, whole
(Update mode). Timers at slide boundaries remove what the watermark has passed: Spark
drops ticks older than the watermark before they get here, so no later tick can reach a
window that ended, nor repeat an identity from before it.

Why buckets of coins, not one group per coin: Spark calls the processor once per group
per batch, and each call pays its own state reads, writes and timer calls. With a group
per coin, 1,000 coins cost 1,000 calls a batch however few ticks they bring (catch-up fell
from 7,301 rows/s with 3 coins to 2,268 with 1,000). A bucket keeps its coins' windows as
one Arrow table per window start and its identities as one per slide, so a batch costs a
few state calls per bucket and vectorised work per tick. The bucket is a hash of the
coin, fixed for the life of a checkpoint (`STATE_BUCKETS`).

Duplicates are checked here rather than by `dropDuplicates`: Spark's operator scans its
whole store for expired keys on every batch (with a 10 min watermark at 1,000 ticks/s,
600,000 rows per batch, which doubled the batch time), while the identities kept here
are read and written only for the slides a batch touches and dropped whole by a timer.

Partial sums make every mean exact however the ticks are split into batches: arithmetic
`sum / n`, geometric `exp(sum(log p) / n)`, harmonic `n / sum(1 / p)`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from pyspark.sql import Column
from pyspark.sql import functions as F
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
CANDLE = "candle"
# Coins per source are spread over this many state groups. Part of the checkpoint: a
# different number would look for a coin's state in another bucket.
STATE_BUCKETS = 16
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
# One schema for every kind of row, so one query and one write pass serve all the tables. A
# candle travels as a window from its start to its end, its means null.
OUTPUT = f"kind string, {_TICK_COLUMNS}, {WINDOW_COLUMNS}"
_TYPES = dict(column.split() for column in OUTPUT.split(", "))
PARTIAL_NAMES = [column.split()[0] for column in PARTIALS.split(", ")]
WINDOW_KEY = ["symbol", "start"]
CANDLE_KEY = ["interval_ms", "symbol", "start"]
_SUMS = ["tick_count", "price_sum", "log_sum", "inverse_sum"]


def state_bucket(symbol: Column) -> Column:
    """The state group of a coin (per source): a stable hash, so a coin keeps its bucket."""
    return F.pmod(F.xxhash64(symbol), F.lit(STATE_BUCKETS))


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


def batch_partials(
    ticks: pd.DataFrame, window_ms: int, slide_ms: int, by: Sequence[str] = ()
) -> pd.DataFrame:
    """Partial sums per window start (and per `by` column) for one batch's ticks.

    Indexed by start, or by (*by, start); ticks are taken in event-time order.
    """
    times = ticks["event_time_ms"].to_numpy(dtype=np.int64)
    prices = ticks["price"].to_numpy(dtype=np.float64)
    index, starts = window_members(times, window_ms, slide_ms)
    members = pd.DataFrame(
        {
            **{column: ticks[column].to_numpy()[index] for column in by},
            "start": starts,
            "ms": times[index],
            "price": prices[index],
        }
    ).sort_values([*by, "start", "ms"], kind="stable")
    members["log"] = np.log(members["price"])
    members["inverse"] = 1.0 / members["price"]
    grouped = members.groupby([*by, "start"], sort=True)
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


def merge_partials(
    older: pd.DataFrame, newer: pd.DataFrame, key: Sequence[str] = WINDOW_KEY
) -> pd.DataFrame:
    """Partials of the same windows (columns `key` and PARTIAL_NAMES) as one each.

    Sums add up, extremes combine; of two ticks at the same event time, the earlier-seen
    one is a window's first and the later-seen its last.
    """
    key = list(key)
    both = pd.concat([older, newer], ignore_index=True)  # older first: stable sorts keep it so
    grouped = both.groupby(key, sort=True)
    by_first = both.sort_values("first_ms", kind="stable").groupby(key, sort=True)
    by_last = both.sort_values("last_ms", kind="stable").groupby(key, sort=True)
    merged = grouped[_SUMS].sum()
    merged["min_price"] = grouped["min_price"].min()
    merged["max_price"] = grouped["max_price"].max()
    merged[["first_ms", "first_price"]] = by_first[["first_ms", "first_price"]].first()
    merged[["last_ms", "last_price"]] = by_last[["last_ms", "last_price"]].last()
    return merged[PARTIAL_NAMES].reset_index()


def current_window(last_event_ms: dict[int, int]) -> int:
    """Of a coin's windows (start ms -> last event ms), the one current as of its newest tick.

    That is the window which holds the newest tick and started earliest: it covers the most
    recent full window length. The streaming job and `latest_aggregates`' writer both pick
    it by this rule.
    """
    newest = max(last_event_ms.values())
    return min(start for start, last in last_event_ms.items() if last == newest)


def current_window_keys(windows: pd.DataFrame, symbols: set[str]) -> set[tuple[str, int]]:
    """(coin, start) of each of `symbols`' current window among `windows` (one rule above)."""
    lasts: dict[str, dict[int, int]] = defaultdict(dict)
    for symbol, start, last in zip(windows["symbol"], windows["start"], windows["last_ms"],
                                   strict=True):  # fmt: skip
        if symbol in symbols:
            lasts[symbol][int(start)] = int(last)
    return {(symbol, current_window(by_start)) for symbol, by_start in lasts.items()}


def _spans(source: str, partials: pd.DataFrame, lengths: Any) -> dict[str, Any]:
    """What a window's and a candle's output rows share: where and when, count and prices."""
    starts = partials["start"].to_numpy(dtype=np.int64)
    return {
        "symbol": partials["symbol"].to_numpy(dtype=object),
        "source": source,
        "window_start_ms": starts,
        "window_end_ms": starts + lengths,
        "tick_count": partials["tick_count"].to_numpy(),
        "min_price": partials["min_price"].to_numpy(),
        "max_price": partials["max_price"].to_numpy(),
        "first_price": partials["first_price"].to_numpy(),
        "last_price": partials["last_price"].to_numpy(),
        "last_event_ms": partials["last_ms"].to_numpy(),
    }


def means_rows(source: str, windows: pd.DataFrame, window_ms: int) -> pd.DataFrame:
    """Output rows of windows (columns symbol, start, PARTIAL_NAMES), means from partials."""
    count = windows["tick_count"].to_numpy(dtype=np.float64)
    means = {
        "arithmetic_mean": windows["price_sum"].to_numpy() / count,
        "geometric_mean": np.exp(windows["log_sum"].to_numpy() / count),
        "harmonic_mean": count / windows["inverse_sum"].to_numpy(),
    }
    return _frame(WINDOW, _spans(source, windows, window_ms) | means, len(windows))


def window_rows(
    symbol: str, source: str, windows: dict[int, tuple], window_ms: int
) -> pd.DataFrame:
    """The output rows of one coin's windows (start ms -> partials), as `means_rows`."""
    frame = pd.DataFrame(list(windows.values()), columns=PARTIAL_NAMES)
    frame.insert(0, "start", np.fromiter(windows, dtype=np.int64, count=len(windows)))
    frame.insert(0, "symbol", symbol)
    return means_rows(source, frame, window_ms)


def candle_rows(source: str, candles: pd.DataFrame) -> pd.DataFrame:
    """Output rows of candles (columns CANDLE_KEY and PARTIAL_NAMES): OHLC from partials."""
    lengths = candles["interval_ms"].to_numpy(dtype=np.int64)
    return _frame(CANDLE, _spans(source, candles, lengths), len(candles))


def batch_candles(ticks: pd.DataFrame, intervals_ms: Sequence[int]) -> pd.DataFrame:
    """Partials of every candle the ticks fall in, at each interval (columns CANDLE_KEY ...).

    A candle is a window as long as its slide: the one window rule, so the stream and the
    repair build the same candles.
    """
    frames = [
        batch_partials(ticks, ms, ms, by=["symbol"]).reset_index().assign(interval_ms=ms)
        for ms in intervals_ms
    ]
    return pd.concat(frames, ignore_index=True)[[*CANDLE_KEY, *PARTIAL_NAMES]]


def to_arrow(frame: pd.DataFrame) -> bytes:
    """A frame as Arrow IPC bytes: how a bucket keeps a table in one state value."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def from_arrow(blob: bytes) -> pd.DataFrame:
    return pa.ipc.open_stream(blob).read_pandas()


class WindowedMeans(StatefulProcessor):
    """Per source and bucket of coins: ticks pass, windows and candles fold into state."""

    def __init__(
        self, window_s: int, slide_s: int, candle_intervals_ms: Sequence[int] = ()
    ) -> None:
        self.window_ms, self.slide_ms = window_s * 1000, slide_s * 1000
        self.candle_intervals_ms = tuple(candle_intervals_ms)

    def init(self, handle: StatefulProcessorHandle) -> None:
        self.handle = handle
        # Window start -> the bucket's coins' partials of that window (an Arrow table).
        self.windows = handle.getMapState("windows", "start_ms long", "partials binary")
        # The bucket's open candles, every interval (an Arrow table): few rows per coin.
        self.candles = handle.getValueState("candles", "partials binary")
        # Slide start -> (coin, event time) of the ticks seen in it (an Arrow table).
        self.identities = handle.getMapState("identities", "slide_start_ms long", "ticks binary")
        self.timers: set[int] = set()  # the current bucket's, read afresh for each batch

    def handleInputRows(
        self, key: Any, rows: Iterator[pd.DataFrame], timerValues: TimerValues
    ) -> Iterator[pd.DataFrame]:
        source, _bucket = key
        # Window ends and slide ends share timestamps: register each once (Spark warns on
        # every repeat).
        self.timers = set(self.handle.listTimers())
        ticks = self._first_seen(pd.concat(list(rows), ignore_index=True))
        if ticks.empty:
            return
        yield _frame(TICK, {name: ticks[name].to_numpy() for name in ticks.columns}, len(ticks))
        # The bucket's open windows in one read (those the watermark has not passed).
        stored = self._stored_windows()
        new = batch_partials(ticks, self.window_ms, self.slide_ms, by=["symbol"]).reset_index()
        known = new if stored.empty else merge_partials(stored, new)
        keys = pd.MultiIndex.from_frame(known[WINDOW_KEY])
        changed = keys.isin(pd.MultiIndex.from_frame(new[WINDOW_KEY]))
        touched = set(new["start"].tolist())
        opened = touched - set(stored["start"].tolist())
        # A start's table holds all the bucket's coins: unchanged ones are written back too.
        for start, table in known.groupby("start", sort=False):
            if start in opened:
                self._expire_at(int(start) + self.window_ms)
            if start in touched:
                self.windows.updateValue((int(start),), (to_arrow(table),))
        # Each coin's current window goes out with every batch of the coin, changed or not:
        # `latest_aggregates` is written from each batch's newest window, and a batch of
        # late ticks alone must not make an older window the latest.
        current = current_window_keys(known, set(ticks["symbol"]))
        yield means_rows(source, known[changed | keys.isin(current)], self.window_ms)
        if self.candle_intervals_ms:
            yield candle_rows(source, self._fold_candles(ticks))

    def _fold_candles(self, ticks: pd.DataFrame) -> pd.DataFrame:
        """Fold the ticks into the bucket's open candles; return the candles they changed."""
        new = batch_candles(ticks, self.candle_intervals_ms)
        stored = self._stored_candles()
        known = new if stored.empty else merge_partials(stored, new, CANDLE_KEY)
        self.candles.update((to_arrow(known),))
        for end in set((new["start"] + new["interval_ms"]).tolist()):
            self._expire_at(int(end))
        keys = pd.MultiIndex.from_frame(known[CANDLE_KEY])
        return known[keys.isin(pd.MultiIndex.from_frame(new[CANDLE_KEY]))]

    def _stored_candles(self) -> pd.DataFrame:
        stored = self.candles.get() if self.candles.exists() else None
        if stored is None:
            return pd.DataFrame(columns=[*CANDLE_KEY, *PARTIAL_NAMES])
        return from_arrow(stored[0])

    def _stored_windows(self) -> pd.DataFrame:
        tables = [from_arrow(blob) for _start, (blob,) in self.windows.iterator()]
        if not tables:
            return pd.DataFrame(columns=[*WINDOW_KEY, *PARTIAL_NAMES])
        return pd.concat(tables, ignore_index=True)

    def _first_seen(self, ticks: pd.DataFrame) -> pd.DataFrame:
        """The ticks not seen before (nor earlier in this batch); their identities kept.

        A tick's identity within its source is its coin and event time (the MongoDB
        sink's `_id` rule); identities are read and written per slide.
        """
        identity = ticks[["symbol", "event_time_ms"]]
        keep = ~identity.duplicated().to_numpy()
        times = ticks["event_time_ms"].to_numpy(dtype=np.int64)
        slides = times - times % self.slide_ms
        for slide, rows in pd.Series(slides).groupby(slides).indices.items():
            key = (int(slide),)
            before = self._identities(key)
            batch = identity.iloc[rows]
            if len(before):
                seen_before = pd.MultiIndex.from_frame(batch).isin(pd.MultiIndex.from_frame(before))
                keep[rows] &= ~seen_before
            seen = pd.concat([before, batch[keep[rows]]], ignore_index=True)
            self.identities.updateValue(key, (to_arrow(seen),))
        return ticks[keep]

    def _identities(self, slide: tuple[int]) -> pd.DataFrame:
        """(coin, event time) of the ticks seen in a slide; a new slide gets its timer."""
        stored = self.identities.getValue(slide) if self.identities.containsKey(slide) else None
        if stored is not None:
            return from_arrow(stored[0])
        self._expire_at(slide[0] + self.slide_ms)
        return pd.DataFrame(
            {"symbol": pd.Series(dtype=object), "event_time_ms": pd.Series(dtype=np.int64)}
        )

    def _expire_at(self, moment_ms: int) -> None:
        if moment_ms not in self.timers:
            self.handle.registerTimer(moment_ms)
            self.timers.add(moment_ms)

    def handleExpiredTimer(
        self, key: Any, timerValues: TimerValues, expiredTimerInfo: ExpiredTimerInfo
    ) -> Iterator[pd.DataFrame]:
        """The watermark passed a slide boundary: drop what no tick can reach any more.

        That is the windows ending there (final in Cassandra), the identities of the slides
        before it and the candles ended by then.
        """
        boundary = expiredTimerInfo.getExpiryTimeInMs()
        self.windows.removeKey((boundary - self.window_ms,))
        for (slide,) in list(self.identities.keys()):
            if slide + self.slide_ms <= boundary:
                self.identities.removeKey((slide,))
        candles = self._stored_candles()
        open_ = candles[candles["start"] + candles["interval_ms"] > boundary]
        if len(open_) < len(candles):
            if open_.empty:
                self.candles.clear()
            else:
                self.candles.update((to_arrow(open_),))
        return iter([])

    def close(self) -> None:
        """Nothing to release: the state lives in Spark's store."""
