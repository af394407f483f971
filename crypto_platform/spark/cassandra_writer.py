"""The foreachBatch writer: upserts into the Cassandra tables, concurrent, never row by row.

Each batch is written in one pass on the executors: a partition holds whole coins (the
rows come grouped by symbol and source), its ticks and the windows and candles they changed,
handed over as Arrow columns. One session and one set of prepared statements per Python worker;
unlogged batches of one Cassandra partition each, many in flight. `latest_prices` rows
are written `USING TIMESTAMP` of their event time and source (`price_version`), so of
concurrent, replayed or late writes the newest tick always wins, whole; every other row at
the client's clock (see `window_statements`). Re-running a batch writes the same rows:
upserts by primary key.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from cassandra.cluster import Session
from cassandra.concurrent import execute_concurrent
from cassandra.query import BatchStatement, BatchType, PreparedStatement
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from crypto_platform.candles import interval_of, period_of
from crypto_platform.settings import Settings
from crypto_platform.spark.windowed_means import CANDLE, TICK, WINDOW, current_window
from crypto_platform.storage import cassandra
from crypto_platform.ticks import SOURCES

BATCH_ROWS = 100
# Batches in flight per writer. Measured on the local Cassandra (100,000 rows in batches of
# 100, two runs each, after a warm-up): 8: 43-44k rows/s, 16: 54k, 32: 50-62k, 64: 47-56k,
# 128: 51-55k. Past 16-32 the server's CPU, not the client, is the limit.
CONCURRENCY = 32


@dataclass(frozen=True)
class CassandraTarget:
    """Where to write: small and picklable, so executors can connect themselves."""

    # (setting, value) pairs that `cassandra.connect` reads: hosts, port, protocol,
    # credentials, TLS, consistency (values hashable: a list becomes a tuple).
    connection: tuple[tuple[str, Any], ...]
    keyspace: str
    window_seconds: int

    @classmethod
    def from_settings(cls, settings: Settings) -> CassandraTarget:
        connection = tuple(
            (name, tuple(value) if isinstance(value, list) else value)
            for name, value in settings.model_dump(include=set(cassandra.CONNECTION)).items()
        )
        return cls(connection, settings.cassandra_keyspace, settings.aggregate_window_s)


_sessions: dict[CassandraTarget, Session] = {}
_prepared: dict[tuple[CassandraTarget, str], PreparedStatement] = {}


def session_for(target: CassandraTarget) -> Session:
    """One session per process and target (Python workers are reused between tasks)."""
    if target not in _sessions:
        _sessions[target] = cassandra.connect(Settings(**dict(target.connection)))[1]
    return _sessions[target]


def prepared(target: CassandraTarget, cql: str) -> PreparedStatement:
    """Prepared once per process: preparing is a round trip to the server."""
    if (target, cql) not in _prepared:
        _prepared[(target, cql)] = session_for(target).prepare(cql)
    return _prepared[(target, cql)]


def close_sessions() -> None:
    """Shut down the cached sessions' clusters.

    A process that ends with one still open prints a traceback from the driver's scheduler
    thread (its executor is already shut down by then), so callers that can, close them.
    """
    _prepared.clear()
    while _sessions:
        _sessions.popitem()[1].cluster.shutdown()


def day_of(ms: int) -> str:
    """The `day` partition of a moment (ms since the epoch, UTC)."""
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d")


# Columns of a batch as Python lists, by name: what the writers take (Arrow hands them
# over column by column, far cheaper than row objects).
Columns = dict[str, list[Any]]

PRICE_COLUMNS = ("symbol", "day", "event_time", "source", "price", "quote", "ingest_time")
LATEST_PRICE_COLUMNS = (
    "symbol", "source", "price", "quote", "event_time", "ingest_time", "name", "market_cap",
    "volume_24h", "change_24h_pct", "number_of_markets", "total_supply", "uuid",
)  # fmt: skip
AGGREGATE_COLUMNS = (
    "arithmetic_mean", "geometric_mean", "harmonic_mean", "tick_count", "min_price",
    "max_price", "first_price", "last_price", "updated_at",
)  # fmt: skip
WINDOW_KEY = ("symbol", "source", "window_seconds", "window_start", "window_end")
# Where a Cassandra column comes from in a batch (timestamps travel as ms since the epoch,
# which the driver writes as they are).
SOURCE_COLUMN = {
    "event_time": "event_time_ms", "ingest_time": "ingest_time_ms",
    "window_start": "window_start_ms", "window_end": "window_end_ms",
}  # fmt: skip
WINDOW_VALUES = (
    "symbol", "source", "day", "window_start_ms", "window_end_ms", "arithmetic_mean",
    "geometric_mean", "harmonic_mean", "tick_count", "min_price", "max_price", "first_price",
    "last_price", "last_event_ms",
)  # fmt: skip
# A candle row's columns in a batch: it travels as a window from its start to its end.
CANDLE_VALUES = (
    "symbol", "source", "window_start_ms", "window_end_ms", "first_price", "max_price",
    "min_price", "last_price", "tick_count", "last_event_ms",
)  # fmt: skip
CANDLE_COLUMNS = (
    "symbol", "source", "interval", "period", "start", "open", "high", "low", "close",
    "tick_count", "last_event_time", "updated_at",
)  # fmt: skip
TICK_VALUES = tuple(
    dict.fromkeys(SOURCE_COLUMN.get(c, c) for c in (*PRICE_COLUMNS, *LATEST_PRICE_COLUMNS))
)


def insert_cql(
    keyspace: str, table: str, columns: tuple[str, ...], *, using_timestamp: bool = False
) -> str:
    """A prepared INSERT (an upsert in CQL); names are constants and a validated keyspace."""
    markers = ", ".join("?" for _ in columns)
    statement = f"INSERT INTO {keyspace}.{table} ({', '.join(columns)}) VALUES ({markers})"
    return statement + (" USING TIMESTAMP ?" if using_timestamp else "")


def price_statements(target: CassandraTarget, ticks: Columns) -> list[tuple[Any, Any]]:
    """Ticks into prices_by_symbol; each coin's newest of them into latest_prices.

    Each writer sends its own newest tick per coin `USING TIMESTAMP` of its version
    (`price_version`), and Cassandra keeps the newest of all: no shuffle, no second Spark
    job.
    """
    ks = target.keyspace
    insert = prepared(target, insert_cql(ks, "prices_by_symbol", PRICE_COLUMNS))
    by_key: dict[tuple[str, str], list[tuple]] = defaultdict(list)
    newest: dict[str, tuple[int, int]] = {}  # symbol: (version, row)
    values = zip(*(ticks[SOURCE_COLUMN.get(c, c)] for c in PRICE_COLUMNS), strict=True)
    for i, row in enumerate(values):
        symbol, day, event_time_ms, source = row[:4]
        by_key[(symbol, day)].append(row)
        version = price_version(event_time_ms, source)
        if version > newest.get(symbol, (-1, 0))[0]:
            newest[symbol] = (version, i)
    statements = partition_batches(insert, by_key.values())
    insert_latest = prepared(
        target, insert_cql(ks, "latest_prices", LATEST_PRICE_COLUMNS, using_timestamp=True)
    )
    for version, i in newest.values():
        latest = tuple(ticks[SOURCE_COLUMN.get(c, c)][i] for c in LATEST_PRICE_COLUMNS)
        statements.append((insert_latest, (*latest, version)))
    return statements


def price_version(event_time_ms: int, source: str) -> int:
    """The write timestamp of a `latest_prices` version: its event time (us), then its source.

    Two sources can report a coin at the same millisecond. With equal timestamps Cassandra
    resolves cell by cell and the row would mix both ticks; the source's place in
    `SOURCES` (the later wins) keeps the timestamps apart, so one tick wins, whole.
    """
    return event_time_ms * 1000 + SOURCES.index(source)


def partition_batches(
    insert: PreparedStatement, partitions: Iterable[list[tuple]]
) -> list[tuple[Any, Any]]:
    """Unlogged batches of up to BATCH_ROWS rows of one partition each, for `_run`.

    A batch of one partition is one mutation on one replica: the cheapest way to write
    many rows (a batch spanning partitions makes its coordinator fan out).
    """
    statements: list[tuple[Any, Any]] = []
    for values in partitions:
        for start in range(0, len(values), BATCH_ROWS):
            batch = BatchStatement(batch_type=BatchType.UNLOGGED)
            for value in values[start : start + BATCH_ROWS]:
                batch.add(insert, value)
            statements.append((batch, None))
    return statements


def current_windows(windows: list[tuple]) -> dict[tuple[str, str], tuple]:
    """Per coin and source, its current window among these rows (shaped as WINDOW_VALUES).

    The streaming job sends each batch's coins' current windows (`current_window`), so the
    rows of a batch always hold them.
    """
    by_series: dict[tuple[str, str], dict[int, tuple]] = defaultdict(dict)
    for row in windows:
        symbol, source, _day, start = row[:4]
        by_series[(symbol, source)][start] = row
    return {
        series: rows[current_window({start: row[-1] for start, row in rows.items()})]
        for series, rows in by_series.items()
    }


def window_statements(
    target: CassandraTarget, windows: Columns, *, write_latest: bool = True
) -> list[tuple[Any, Any]]:
    """Windows into aggregates_by_symbol; each coin's current one into latest_aggregates.

    Every row is written at the client's clock (the driver's monotonic microseconds), so
    the later write of a row wins whole (it writes every column), a DELETE from cqlsh works
    as usual, and a repair run after the stream wins over the rows it corrects. The stream
    writes `latest_aggregates` only from the coins' current windows, batch after batch;
    a repair only where its window is the coin's newest (`write_latest`). A coin has one
    window series per source.
    """
    ks, seconds = target.keyspace, target.window_seconds
    by_symbol = prepared(
        target,
        insert_cql(ks, "aggregates_by_symbol", (*WINDOW_KEY, "day", *AGGREGATE_COLUMNS)),
    )
    latest = prepared(
        target, insert_cql(ks, "latest_aggregates", (*WINDOW_KEY, *AGGREGATE_COLUMNS))
    )
    now = dt.datetime.now(dt.UTC)
    rows = list(zip(*(windows[c] for c in WINDOW_VALUES), strict=True))
    statements: list[tuple[Any, Any]] = [
        (by_symbol, (symbol, source, seconds, start, end, day, *means, now))
        for symbol, source, day, start, end, *means, _ in rows
    ]
    if write_latest:
        for symbol, source, _, start, end, *means, _last in current_windows(rows).values():
            statements.append((latest, (symbol, source, seconds, start, end, *means, now)))
    return statements


def candle_statements(target: CassandraTarget, candles: Columns) -> list[tuple[Any, Any]]:
    """Candles into their table, each at the client's clock (a later write wins, as windows).

    A batch changes about one candle per coin and interval, each in its own partition: single
    statements, many in flight.
    """
    insert = prepared(target, insert_cql(target.keyspace, "candles", CANDLE_COLUMNS))
    now = dt.datetime.now(dt.UTC)
    statements: list[tuple[Any, Any]] = []
    rows = zip(*(candles[c] for c in CANDLE_VALUES), strict=True)
    for symbol, source, start, end, *ohlc_count, last_event_ms in rows:
        interval = interval_of(end - start)
        key = (symbol, source, interval, period_of(interval, start), start)
        statements.append((insert, (*key, *ohlc_count, last_event_ms, now)))
    return statements


def write_rows(
    target: CassandraTarget,
    ticks: Columns | None = None,
    windows: Columns | None = None,
    candles: Columns | None = None,
    *,
    write_latest: bool = True,
) -> None:
    """Ticks, windows and candles (columns by name, as in a batch) into their tables."""
    statements = []
    if ticks and ticks["symbol"]:
        statements += price_statements(target, ticks)
    if windows and windows["symbol"]:
        statements += window_statements(target, windows, write_latest=write_latest)
    if candles and candles["symbol"]:
        statements += candle_statements(target, candles)
    execute_concurrent(
        session_for(target), statements, concurrency=CONCURRENCY, raise_on_first_error=True
    )


WRITTEN = "ticks long, windows long, candles long"


def _columns(table: pa.Table, names: Iterable[str]) -> Columns:
    return {name: table.column(name).to_pylist() for name in names}


def write_partition(
    target: CassandraTarget, batches: Iterator[pa.RecordBatch]
) -> Iterator[pa.RecordBatch]:
    """mapInArrow, executor side: one partition's ticks, windows and candles; yields counts."""
    received = list(batches)
    if not received:  # an empty partition
        return
    table = pa.Table.from_batches(received)
    ticks, windows, candles = (
        table.filter(pc.equal(table.column("kind"), kind)) for kind in (TICK, WINDOW, CANDLE)
    )
    write_rows(
        target,
        _columns(ticks, TICK_VALUES),
        _columns(windows, WINDOW_VALUES),
        _columns(candles, CANDLE_VALUES),
    )
    counts = {"ticks": ticks.num_rows, "windows": windows.num_rows, "candles": candles.num_rows}
    yield pa.RecordBatch.from_pydict(
        {name: [count] for name, count in counts.items()},
        schema=pa.schema([(name, pa.int64()) for name in counts]),
    )


def write_batch(batch: DataFrame, target: CassandraTarget) -> tuple[int, int, int]:
    """foreachBatch: one pass over the partitions, on the executors; rows written by kind."""
    moment = F.coalesce("window_start_ms", "event_time_ms")
    day = F.date_format(F.timestamp_millis(moment), "yyyy-MM-dd").alias("day")
    written = batch.select("*", day).mapInArrow(partial(write_partition, target), WRITTEN)
    counts = written.collect()
    return (
        sum(r.ticks for r in counts),
        sum(r.windows for r in counts),
        sum(r.candles for r in counts),
    )
