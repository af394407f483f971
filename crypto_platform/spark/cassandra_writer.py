"""foreachBatch writers: upserts into the four Cassandra tables, concurrent, never row by row.

Raw prices and latest prices are written from the executors (one session per Python
worker, unlogged batches of one Cassandra partition each, many in flight); the
aggregates (a few rows per batch) from the driver. `latest_*` rows are written
`USING TIMESTAMP` of their event time (`latest_aggregates`: of their last event and tick
count, see `version_timestamp`), so of concurrent, replayed or late writes the newest
version always wins, whole. Re-running a batch writes the same rows: upserts by primary key.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from cassandra.cluster import Session
from cassandra.concurrent import execute_concurrent, execute_concurrent_with_args
from cassandra.query import BatchStatement, BatchType, PreparedStatement
from pyspark.sql import DataFrame, Row

from crypto_platform.settings import Settings
from crypto_platform.storage import cassandra

BATCH_ROWS = 100
VERSIONS_PER_MS = 1_000_000
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


def session_for(target: CassandraTarget) -> Session:
    """One session per process and target (Python workers are reused between tasks)."""
    if target not in _sessions:
        _sessions[target] = cassandra.connect(Settings(**dict(target.connection)))[1]
    return _sessions[target]


def close_sessions() -> None:
    """Shut down the cached sessions' clusters.

    A process that ends with one still open prints a traceback from the driver's scheduler
    thread (its executor is already shut down by then), so callers that can, close them.
    """
    while _sessions:
        _sessions.popitem()[1].cluster.shutdown()


def _micros(moment: dt.datetime) -> int:
    return int(moment.replace(tzinfo=moment.tzinfo or dt.UTC).timestamp() * 1_000_000)


def version_timestamp(last_event_time: dt.datetime, tick_count: int) -> int:
    """The write timestamp of a `latest_aggregates` version: strictly newer, strictly larger.

    A version is newer when its last event is later, or, with the same last event (a late
    tick), when it counts more ticks. Two versions never share a timestamp (below a
    million ticks per window), so Cassandra never resolves a tie cell by cell into a row
    mixing both: `last event ms * 1_000_000 + tick_count` (fits a 64-bit timestamp).
    """
    return _micros(last_event_time) // 1000 * VERSIONS_PER_MS + min(tick_count, VERSIONS_PER_MS - 1)


def _day(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%d")


PRICE_COLUMNS = ("symbol", "day", "event_time", "source", "price", "quote", "ingest_time")
LATEST_PRICE_COLUMNS = (
    "symbol", "source", "price", "quote", "event_time", "ingest_time", "name", "market_cap",
    "volume_24h", "change_24h_pct", "number_of_markets", "total_supply", "uuid",
)  # fmt: skip


def write_price_partition(target: CassandraTarget, rows: Iterator[Row]) -> None:
    """Executor side: ticks into prices_by_symbol, the newest per symbol into latest_prices.

    Each partition writes its own newest tick per symbol `USING TIMESTAMP` of the event
    time, and Cassandra keeps the newest of all: no shuffle, no second Spark job.
    """
    session = session_for(target)
    insert = session.prepare(insert_cql(target.keyspace, "prices_by_symbol", PRICE_COLUMNS))
    insert_latest = session.prepare(
        insert_cql(target.keyspace, "latest_prices", LATEST_PRICE_COLUMNS, using_timestamp=True)
    )
    by_key: dict[tuple[str, str], list[tuple]] = defaultdict(list)
    newest: dict[str, Row] = {}
    for row in rows:
        day = _day(row.event_time)
        by_key[(row.symbol, day)].append(
            (row.symbol, day, row.event_time, row.source, row.price, row.quote, row.ingest_time)
        )
        if row.symbol not in newest or row.event_time > newest[row.symbol].event_time:
            newest[row.symbol] = row
    statements = partition_batches(insert, by_key.values())
    for row in newest.values():
        latest = tuple(getattr(row, column) for column in LATEST_PRICE_COLUMNS)
        statements.append((insert_latest, (*latest, _micros(row.event_time))))
    _run(session, statements)


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


def write_prices(batch: DataFrame, target: CassandraTarget) -> None:
    """ForeachBatch of the price query: one pass over the partitions, on the executors."""
    batch.foreachPartition(lambda rows: write_price_partition(target, rows))


AGGREGATE_COLUMNS = (
    "arithmetic_mean", "geometric_mean", "harmonic_mean", "tick_count", "min_price",
    "max_price", "first_price", "last_price", "updated_at",
)  # fmt: skip


def insert_cql(
    keyspace: str, table: str, columns: tuple[str, ...], *, using_timestamp: bool = False
) -> str:
    """A prepared INSERT (an upsert in CQL); names are constants and a validated keyspace."""
    markers = ", ".join("?" for _ in columns)
    statement = f"INSERT INTO {keyspace}.{table} ({', '.join(columns)}) VALUES ({markers})"
    return statement + (" USING TIMESTAMP ?" if using_timestamp else "")


def _aggregate_values(row: Row, now: dt.datetime) -> tuple:
    return (
        row.arithmetic_mean, row.geometric_mean, row.harmonic_mean, row.tick_count,
        row.min_price, row.max_price, row.first_price, row.last_price, now,
    )  # fmt: skip


def current_windows(rows: Iterable[Row]) -> dict[str, Row]:
    """Per symbol, the moving window as of its newest tick.

    That is the window which contains the tick and started earliest, so it covers the
    most recent full window length.
    """
    newest: dict[str, dt.datetime] = {}
    for row in rows:
        newest[row.symbol] = max(newest.get(row.symbol, row.last_event_time), row.last_event_time)
    chosen: dict[str, Row] = {}
    for row in rows:
        t = newest[row.symbol]
        if row.window_start <= t < row.window_end and (
            row.symbol not in chosen or row.window_start < chosen[row.symbol].window_start
        ):
            chosen[row.symbol] = row
    return chosen


def write_aggregates(batch: DataFrame, target: CassandraTarget) -> None:
    """ForeachBatch of the aggregate query: aggregates_by_symbol and latest_aggregates."""
    rows = batch.collect()
    if not rows:
        return
    session = session_for(target)
    now = dt.datetime.now(dt.UTC)
    by_symbol = session.prepare(
        insert_cql(
            target.keyspace,
            "aggregates_by_symbol",
            ("symbol", "window_seconds", "day", "window_start", "window_end", *AGGREGATE_COLUMNS),
        )
    )
    latest = session.prepare(
        insert_cql(
            target.keyspace,
            "latest_aggregates",
            ("symbol", "window_seconds", "window_start", "window_end", *AGGREGATE_COLUMNS),
            using_timestamp=True,
        )
    )
    seconds = target.window_seconds
    _run_with_args(
        session,
        by_symbol,
        [
            (r.symbol, seconds, _day(r.window_start), r.window_start, r.window_end,
             *_aggregate_values(r, now))
            for r in rows
        ],
    )  # fmt: skip
    _run_with_args(
        session,
        latest,
        [
            (r.symbol, seconds, r.window_start, r.window_end, *_aggregate_values(r, now),
             version_timestamp(r.last_event_time, r.tick_count))
            for r in current_windows(rows).values()
        ],
    )  # fmt: skip


def _run(session: Session, statements: list[tuple[Any, Any]]) -> None:
    execute_concurrent(session, statements, concurrency=CONCURRENCY, raise_on_first_error=True)


def _run_with_args(session: Session, statement: Any, args: list[tuple]) -> None:
    execute_concurrent_with_args(
        session, statement, args, concurrency=CONCURRENCY, raise_on_first_error=True
    )
