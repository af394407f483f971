"""Generated history written straight into MongoDB and Cassandra, for `bench --scale`.

One tick a second in all (seed 004's 3,600 an hour), the coins in turn, each priced by a
smooth function of its event time; so any span can be made on its own, and the stores
grow by whole chunks in either direction. MongoDB gets the documents the sink writes
(`Tick.to_document()` plus the hand-over time); Cassandra the rows the Spark job writes,
through its own writer (`write_rows`): the ticks, and the windows computed with its own
window math from exactly the ticks stored (so the windows at the span's edges are those
of a stream that started or stopped there, and are recomputed when the span grows).
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from crypto_platform.settings import Settings
from crypto_platform.sources.simulated import START_PRICES
from crypto_platform.spark.cassandra_writer import (
    TICK_VALUES,
    WINDOW_VALUES,
    CassandraTarget,
    Columns,
    close_sessions,
    day_of,
    write_rows,
)
from crypto_platform.spark.windowed_means import batch_partials, window_rows
from crypto_platform.storage import mongo
from crypto_platform.storage.mongo_queries import HANDED_AT
from crypto_platform.ticks import Tick

SOURCE = "simulated"
STEP_MS = 1000  # one tick a second, the coins in turn: 3,600 an hour
CHUNK_MS = 4 * 3_600_000  # history is written 4 hours (14,400 ticks) at a time
INGEST_DELAY_MS = 200  # event to ingest time, as a polled source has it
HANDOVER_DELAY_MS = 50  # ingest to the sink's hand-over to MongoDB
DAY_MS = 86_400_000


@dataclass(frozen=True)
class Span:
    """Stored history `[start_ms, end_ms)`, on the whole-second grid."""

    start_ms: int
    end_ms: int

    @property
    def ticks(self) -> int:
        return (self.end_ms - self.start_ms) // STEP_MS


def prices(symbol: str, times_ms: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    """A coin's price at these moments: its start price moved by a daily and a 7-minute wave."""
    base = START_PRICES.get(symbol, (100.0, 0.0))[0]
    seconds = times_ms / 1000.0
    waves = 0.05 * np.sin(2 * math.pi * seconds / 86_400) + 0.01 * np.sin(seconds / 67.0)
    return base * np.exp(waves)


def tick_times(symbols: list[str], index: int, start_ms: int, end_ms: int) -> npt.NDArray[np.int64]:
    """The event times in `[start_ms, end_ms)` of the coin at `index` in `symbols`."""
    period = STEP_MS * len(symbols)
    offset = index * STEP_MS
    first = start_ms + (offset - start_ms) % period
    return np.arange(first, end_ms, period, dtype=np.int64)


def documents(symbol: str, times: npt.NDArray[np.int64]) -> list[dict[str, Any]]:
    """The sink's documents for one coin's ticks: `Tick.to_document()`, hand-over stamped.

    The first is built by `Tick` itself; the rest copy it with their own time and price
    (building every one through validation would cost more than MongoDB's insert).
    """
    values = prices(symbol, times)
    first = Tick.build(
        source=SOURCE,
        symbol=symbol,
        price=float(values[0]),
        event_time_ms=int(times[0]),
        ingest_time_ms=int(times[0]) + INGEST_DELAY_MS,
    )
    template = first.to_document()  # fmt: skip
    prefix = first.identity.removesuffix(str(first.event_time_ms))
    out = []
    for ms, price in zip(times.tolist(), values.tolist(), strict=True):
        ingest = ms + INGEST_DELAY_MS
        out.append(
            template | {"_id": f"{prefix}{ms}", "price": price, "event_time_ms": ms,
                        "ingest_time_ms": ingest, HANDED_AT: ingest + HANDOVER_DELAY_MS,
                        "event_time": dt.datetime.fromtimestamp(ms / 1000, dt.UTC)}
        )  # fmt: skip
    return out


@functools.cache
def _day(day_number: int) -> str:
    return day_of(day_number * DAY_MS)


def _days(times_ms: list[int]) -> list[str]:
    """`day_of` each moment, formatted once per day (it is per tick the costliest column)."""
    return [_day(ms // DAY_MS) for ms in times_ms]


def tick_columns(docs: list[dict[str, Any]]) -> Columns:
    """The documents as the Cassandra writer takes ticks (columns by name)."""
    columns: Columns = {name: [doc.get(name) for doc in docs] for name in TICK_VALUES}
    columns["day"] = _days(columns["event_time_ms"])
    return columns


def window_columns(settings: Settings, symbol: str, times: npt.NDArray[np.int64],
                   starts: tuple[int, int]) -> Columns:  # fmt: skip
    """The windows starting in `[a, b)` over these ticks (all a window holds), as columns."""
    window_ms, slide_ms = settings.aggregate_window_s * 1000, settings.aggregate_slide_s * 1000
    ticks = pd.DataFrame({"event_time_ms": times, "price": prices(symbol, times)})
    partials = batch_partials(ticks, window_ms, slide_ms)
    partials = partials[(partials.index >= starts[0]) & (partials.index < starts[1])]
    changed = {int(start): tuple(partial) for start, *partial in partials.itertuples()}
    rows = window_rows(symbol, SOURCE, changed, window_ms)
    columns: Columns = {name: rows[name].tolist() for name in WINDOW_VALUES if name != "day"}
    columns["day"] = _days(columns["window_start_ms"])
    return columns


def chunk_rows(
    settings: Settings, chunk: Span, stored: Span
) -> tuple[list[dict[str, Any]], Columns]:
    """The chunk's documents, and every window holding one of its ticks.

    A window is computed from the ticks `stored` holds (the chunk included), so it is
    what the streaming job would have written for that history; a window at the chunk's
    edge is written again, whole, when a neighbouring chunk is added.
    """
    window_ms = settings.aggregate_window_s * 1000
    symbols = settings.symbols
    docs: list[dict[str, Any]] = []
    windows: list[Columns] = []
    for index, symbol in enumerate(symbols):
        own = tick_times(symbols, index, chunk.start_ms, chunk.end_ms)
        if len(own):
            docs += documents(symbol, own)
        around = tick_times(symbols, index, max(stored.start_ms, chunk.start_ms - window_ms),
                            min(stored.end_ms, chunk.end_ms + window_ms))  # fmt: skip
        if len(around):
            starts = (chunk.start_ms - window_ms + 1, chunk.end_ms)
            windows.append(window_columns(settings, symbol, around, starts))
    return docs, {name: [v for w in windows for v in w[name]] for name in WINDOW_VALUES}


class Loader:
    """Grows one contiguous stored span of history, a chunk at a time, in both stores.

    The next chunk is made while the previous one is written (MongoDB and Cassandra at
    once, each in its own thread).
    """

    def __init__(self, settings: Settings, end_ms: int) -> None:
        self.settings = settings
        self.span = Span(end_ms, end_ms)
        self.target = CassandraTarget.from_settings(settings)
        self.client = mongo.connect(settings)
        self.prices = mongo.prices_collection(self.client, settings)
        self.pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="scale-load")
        self.pending: list[Future[Any]] = []

    def close(self) -> None:
        """Wait for the writes in flight (raising what failed), then close every client."""
        try:
            self._wait()
        finally:
            self.pool.shutdown()
            self.client.close()
            close_sessions()

    def back(self, ticks: int, keep_going: Callable[[], bool]) -> None:
        """Add up to `ticks` older ticks before the span, while `keep_going()` says so."""
        goal = self.span.start_ms - ticks * STEP_MS
        while self.span.start_ms > goal and keep_going():
            start = max(goal, self.span.start_ms - CHUNK_MS)
            self._chunk(start, self.span.start_ms, newest=self.span.ticks == 0)
        self._wait()

    def forward(self, end_ms: int) -> None:
        """Add the ticks from the span's end up to `end_ms` (to now, before each timing)."""
        while self.span.end_ms < end_ms:
            self._chunk(self.span.end_ms, min(end_ms, self.span.end_ms + CHUNK_MS), newest=True)
        self._wait()

    def _chunk(self, start_ms: int, end_ms: int, *, newest: bool) -> None:
        """Write the ticks of `[start, end)` and every window they are in, given the span."""
        self.span = Span(min(start_ms, self.span.start_ms), max(end_ms, self.span.end_ms))
        docs, windows = chunk_rows(self.settings, Span(start_ms, end_ms), self.span)
        self._wait()
        self.pending = [
            self.pool.submit(self.prices.insert_many, docs, ordered=False),
            self.pool.submit(write_rows, self.target, tick_columns(docs), windows,
                             write_latest=newest),
        ]  # fmt: skip

    def _wait(self) -> None:
        pending, self.pending = self.pending, []
        for future in pending:
            future.result()
