"""Recompute a span's Cassandra rows from MongoDB, the raw store of record.

Late ticks (behind Spark's watermark), backfilled spans and replayed dead letters reach
MongoDB but not the streaming job's windows. A repair reads the span's ticks from MongoDB
(range reads of the `event_time` index), recomputes every window and candle that overlaps
the span, per coin and source, with the streaming job's own math (`batch_partials`,
`window_rows`, `batch_candles`), and writes the ticks, the windows, the candles and, where
newer, `latest_*` through the streaming job's own writer. Running it twice writes the same
rows: upserts by primary key.

The span is walked an hour of window starts at a time, so memory holds one hour of ticks
(plus a window's length), whatever the span. An hour the span touches is read whole, as
its candles need every tick of it; a day's candle is then rebuilt from its 24 hourly ones.

A candle is rebuilt only once the stream has closed it: MongoDB holds a tick a watermark
past its end, so the stream's watermark has passed it. An open candle lives on in the
stream's state, which lacks the late ticks, and each batch would write it over the repair's.
The automation comes back for them: the hour is recorded in `late_hours` to be repaired
again once its candles have closed (`await_candles`), and `day_candles` rebuilds each day's
candle once the day has closed.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from pymongo.collection import Collection

from crypto_platform.candles import INTERVALS
from crypto_platform.completeness.gaps import sources_and_symbols
from crypto_platform.errors import PlatformError
from crypto_platform.settings import Settings
from crypto_platform.spark.cassandra_writer import (
    CANDLE_VALUES,
    TICK_VALUES,
    WINDOW_VALUES,
    CassandraTarget,
    Columns,
    close_sessions,
    day_of,
    session_for,
    write_rows,
)
from crypto_platform.spark.windowed_means import (
    CANDLE_KEY,
    batch_candles,
    batch_partials,
    candle_rows,
    current_window,
    merge_partials,
    window_rows,
)
from crypto_platform.storage import cassandra_queries, mongo
from crypto_platform.streaming.late_ticks import await_candles

log = logging.getLogger(__name__)

__all__ = ["RepairStats", "rebuild_day_candles", "repair"]

HOUR_MS = 3_600_000
DAY_MS = INTERVALS["1d"]
Series = tuple[str, str]  # (symbol, source): one coin's windows from one source
# Tick fields read from MongoDB: what the Cassandra tables hold (TICK_VALUES less `day`).
TICK_FIELDS = [name for name in TICK_VALUES if name != "day"]


@dataclass
class RepairStats:
    """What a repair read and wrote, and the hours whose rows it rewrote."""

    since_ms: int
    until_ms: int
    symbols: list[str] = field(default_factory=list)
    ticks_read: int = 0
    ticks_written: int = 0
    windows_written: int = 0
    candles_written: int = 0
    candles_left_open: int = 0  # still open in the stream: rebuilt once closed
    hours: set[int] = field(default_factory=set)  # hour starts (ms) of the rows rewritten
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        rate = self.ticks_read / self.seconds if self.seconds else 0.0
        return {
            "since_ms": self.since_ms,
            "until_ms": self.until_ms,
            "symbols": self.symbols,
            "ticks_read": self.ticks_read,
            "ticks_written": self.ticks_written,
            "windows_written": self.windows_written,
            "candles_written": self.candles_written,
            "candles_left_open": self.candles_left_open,
            "hours": sorted(self.hours),
            "seconds": round(self.seconds, 3),
            "ticks_per_s": round(rate, 1),
        }


def repair(
    settings: Settings,
    since_ms: int,
    until_ms: int,
    *,
    symbols: list[str] | None = None,
    progress: Callable[[str], None] = log.info,
) -> RepairStats:
    """Rewrite the span's ticks and every window and closed candle overlapping it, from MongoDB."""
    if until_ms <= since_ms:
        raise ValueError("the span is empty: --until must be after --since")
    stats = RepairStats(since_ms, until_ms)
    started = time.monotonic()
    window_ms = settings.aggregate_window_s * 1000
    watermark_ms = settings.aggregate_watermark_s * 1000
    target = CassandraTarget.from_settings(settings)
    client = mongo.connect(settings)
    try:
        prices = mongo.prices_collection(client, settings)
        late_hours = mongo.late_hours_collection(client, settings)
        seen: set[str] = set()
        days: set[tuple[Series, int]] = set()  # whose day candle to rebuild
        for first, last in _hours_of_starts(since_ms - window_ms, until_ms):
            hour = _candle_hour(settings, first, stats)
            read_from, read_until = first, last + window_ms
            if hour is not None:  # the whole hour, for its candles
                read_from, read_until = hour, max(read_until, hour + HOUR_MS)
            by_series = _ticks(prices, symbols, read_from, read_until)
            closed = _closed_until(prices, watermark_ms, hour) if hour is not None else 0
            left_open = stats.candles_left_open
            for series, ticks in sorted(by_series.items()):
                seen.add(series[0])
                stats.ticks_read += len(ticks)
                written = _rewrite(settings, target, series, ticks, (first, last), stats)
                candles = _rewrite_candles(settings, target, series, ticks, (hour, closed), stats)
                if candles and hour is not None and "1d" in settings.candle_intervals:
                    days.add((series, hour - hour % DAY_MS))
                if written:
                    progress(
                        f"repair {series[0]} ({series[1]}) {_iso(first)}: {written[0]} ticks, "
                        f"{written[1]} windows, {candles} candles "
                        f"({stats.ticks_read / _elapsed(started):.0f} ticks/s)"
                    )
            if hour is not None and stats.candles_left_open > left_open:
                await_candles(late_hours, hour, hour + HOUR_MS + watermark_ms)
        for series, day in sorted(days):
            if _closed(prices, watermark_ms, day + DAY_MS):
                stats.candles_written += _rewrite_day_candle(target, series, day)
            else:
                stats.candles_left_open += 1
        if stats.candles_left_open:
            progress(
                f"repair left {stats.candles_left_open} candles the stream has not closed yet: "
                "late_tick_sensor and day_candles rebuild them once closed"
            )
        stats.symbols = sorted(seen)
    finally:
        client.close()
        close_sessions()
    stats.seconds = _elapsed(started)
    return stats


def _candle_hour(settings: Settings, first_ms: int, stats: RepairStats) -> int | None:
    """The hour holding `first_ms` if its candles are to be rebuilt: kept and in the span."""
    hour = first_ms - first_ms % HOUR_MS
    kept = set(settings.candle_intervals) - {"1d"}
    return hour if kept and stats.since_ms < hour + HOUR_MS else None


def _closed(prices: Collection, watermark_ms: int, end_ms: int) -> bool:
    """Whether the stream has closed what ends at `end_ms`: a tick a watermark later is stored.

    One index seek, no sort. It takes the stream to keep up with MongoDB, as it does.
    """
    later = {"event_time_ms": {"$gte": end_ms + watermark_ms}}
    return prices.find_one(later, {"_id": 1}) is not None


def _closed_until(prices: Collection, watermark_ms: int, hour: int) -> int:
    """Up to when the hour's candles are closed in the stream (its end, for a past hour)."""
    if _closed(prices, watermark_ms, hour + HOUR_MS):
        return hour + HOUR_MS
    newest = prices.find_one(
        {"event_time_ms": {"$gte": hour}}, {"event_time_ms": 1}, sort=[("event_time_ms", -1)]
    )  # a recent hour: the sort reads at most the ticks since it began
    return int(newest["event_time_ms"]) - watermark_ms if newest else hour


def _rewrite_candles(
    settings: Settings,
    target: CassandraTarget,
    series: Series,
    ticks: list[dict[str, Any]],
    hour_closed: tuple[int | None, int],
    stats: RepairStats,
) -> int:
    """Rebuild the hour's closed candles (below a day) that overlap the span; return how many."""
    hour, closed = hour_closed
    if hour is None:
        return 0
    own = [t for t in ticks if hour <= t["event_time_ms"] < hour + HOUR_MS]
    intervals = [INTERVALS[i] for i in settings.candle_intervals if i != "1d"]
    if not own or not intervals:
        return 0
    frame = pd.DataFrame({name: [t[name] for t in own] for name in ("event_time_ms", "price")})
    candles = batch_candles(frame.assign(symbol=series[0]), intervals)
    ends = candles["start"] + candles["interval_ms"]
    candles = candles[(ends > stats.since_ms) & (candles["start"] < stats.until_ms)]
    is_closed = (candles["start"] + candles["interval_ms"] <= closed).to_numpy()
    stats.candles_left_open += int((~is_closed).sum())
    candles = candles[is_closed]
    write_rows(target, candles=_candle_columns(candle_rows(series[1], candles)))
    stats.candles_written += len(candles)
    stats.hours.add(hour)
    return len(candles)


def rebuild_day_candles(settings: Settings, day_ms: int) -> int:
    """Every series' candle of a closed day, from its hourly ones; how many were written.

    What `day_candles` runs each day: the stream wrote the day's candle from its state,
    which lacks the late ticks the repairs of the day's hours have since counted.
    """
    target = CassandraTarget.from_settings(settings)
    client = mongo.connect(settings)
    try:
        prices = mongo.prices_collection(client, settings)
        if not _closed(prices, settings.aggregate_watermark_s * 1000, day_ms + DAY_MS):
            raise PlatformError(f"the day {_iso(day_ms)[:10]} is still open in the stream")
        pairs = sources_and_symbols(prices, day_ms, day_ms + DAY_MS)
        return sum(
            _rewrite_day_candle(target, (symbol, source), day_ms) for source, symbol in pairs
        )
    finally:
        client.close()
        close_sessions()


def _rewrite_day_candle(target: CassandraTarget, series: Series, day_ms: int) -> int:
    """A day's candle from its hourly candles (24 rows, not a day of ticks): 1 or 0 written.

    The hours merge by the stream's own rule (`merge_partials`), the hour's start standing
    for its first tick's time.
    """
    rows = cassandra_queries.candles(
        session_for(target), target.keyspace, series, "1h", day_ms, day_ms + DAY_MS
    )
    hours = pd.DataFrame(list(rows))
    if hours.empty:
        return 0
    partials = pd.DataFrame(
        {
            "interval_ms": DAY_MS,
            "symbol": series[0],
            "start": day_ms,
            "tick_count": hours["tick_count"],
            **dict.fromkeys(["price_sum", "log_sum", "inverse_sum"], np.nan),
            "min_price": hours["low"],
            "max_price": hours["high"],
            "first_ms": hours["start"],
            "first_price": hours["open"],
            "last_ms": hours["last_event_ms"],
            "last_price": hours["close"],
        }
    )
    day = merge_partials(partials, partials.iloc[:0], CANDLE_KEY)
    write_rows(target, candles=_candle_columns(candle_rows(series[1], day)))
    return 1


def _hours_of_starts(first_ms: int, until_ms: int) -> Iterator[tuple[int, int]]:
    """[a, b) ranges of window starts, an hour each (the last shorter), covering the span."""
    start = first_ms
    while start < until_ms:
        end = min(until_ms, start - start % HOUR_MS + HOUR_MS)
        yield start, end
        start = end


def _ticks(
    prices: Collection, symbols: list[str] | None, since_ms: int, until_ms: int
) -> dict[Series, list[dict[str, Any]]]:
    """Each coin's ticks in [since, until) per source, oldest first, as MongoDB holds them.

    One range read of the `event_time` index for every coin at once (no sort, no per-coin
    query); grouped by coin and source here, each series keeps the index's order.
    """
    span: dict[str, Any] = {"event_time_ms": {"$gte": since_ms, "$lt": until_ms}}
    if symbols:
        span["symbol"] = {"$in": symbols}
    by_series: dict[Series, list[dict[str, Any]]] = defaultdict(list)
    for doc in prices.find(span, {"_id": 0, **dict.fromkeys(TICK_FIELDS, 1)}):
        by_series[(doc["symbol"], doc["source"])].append(mongo.plain_ints(doc))
    return by_series


def _rewrite(
    settings: Settings,
    target: CassandraTarget,
    series: Series,
    ticks: list[dict[str, Any]],
    starts: tuple[int, int],
    stats: RepairStats,
) -> tuple[int, int] | None:
    """Write the windows starting in [a, b) and the span's ticks among those in [a, b)."""
    if not ticks:
        return None
    first, last = starts
    window_ms, slide_ms = settings.aggregate_window_s * 1000, settings.aggregate_slide_s * 1000
    prices = pd.DataFrame({name: [t[name] for t in ticks] for name in ("event_time_ms", "price")})
    partials = batch_partials(prices, window_ms, slide_ms)
    partials = partials[(partials.index >= first) & (partials.index < last)]
    changed = dict(zip(partials.index, partials.itertuples(index=False), strict=True))
    windows = window_rows(*series, changed, window_ms)
    lo, hi = max(first, stats.since_ms), min(last, stats.until_ms)
    own = [t for t in ticks if lo <= t["event_time_ms"] < hi]
    write_rows(target, _tick_columns(own), _window_columns(windows),
               write_latest=_newest(target, series, windows))  # fmt: skip
    stats.ticks_written += len(own)
    stats.windows_written += len(windows)
    stats.hours |= {t["event_time_ms"] - t["event_time_ms"] % HOUR_MS for t in own}
    stats.hours |= {int(ms) - int(ms) % HOUR_MS for ms in windows["window_start_ms"]}
    return len(own), len(windows)


def _newest(target: CassandraTarget, series: Series, windows: pd.DataFrame) -> bool:
    """Whether the repaired windows hold the series' current one (none later is stored).

    Rows are written at the client's clock, so a repair of an old hour must not write its
    newest window over a later one in `latest_aggregates`.
    """
    if windows.empty:
        return False
    lasts = dict(zip(windows["window_start_ms"].tolist(), windows["last_event_ms"].tolist(),
                     strict=True))  # fmt: skip
    row = (
        session_for(target)
        .execute(
            f"SELECT window_start FROM {target.keyspace}.latest_aggregates "
            "WHERE symbol = %s AND window_seconds = %s AND source = %s",
            [series[0], target.window_seconds, series[1]],
        )
        .one()
    )
    if row is None:
        return True
    stored_ms = int(row.window_start.replace(tzinfo=dt.UTC).timestamp() * 1000)
    return current_window(lasts) >= stored_ms


def _tick_columns(ticks: list[dict[str, Any]]) -> Columns:
    columns = {name: [t.get(name) for t in ticks] for name in TICK_FIELDS}
    columns["day"] = [day_of(t["event_time_ms"]) for t in ticks]
    return {name: columns[name] for name in TICK_VALUES}


def _candle_columns(candles: pd.DataFrame) -> Columns:
    return {name: _values(candles[name]) for name in CANDLE_VALUES}


def _window_columns(windows: pd.DataFrame) -> Columns:
    columns = {name: _values(windows[name]) for name in WINDOW_VALUES if name != "day"}
    columns["day"] = [day_of(int(ms)) for ms in columns["window_start_ms"]]
    return {name: columns[name] for name in WINDOW_VALUES}


def _values(column: pd.Series) -> list[Any]:
    """Python values as the driver takes them: NaN and pandas' NA become None."""
    return [None if pd.isna(value) else _plain(value) for value in column.tolist()]


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _elapsed(started: float) -> float:
    return max(time.monotonic() - started, 1e-9)


def _iso(ms: int) -> str:
    return pd.Timestamp(ms, unit="ms", tz="UTC").strftime("%Y-%m-%dT%H:%MZ")
