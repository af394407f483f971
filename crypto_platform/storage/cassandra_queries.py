"""Read-only queries over the Cassandra tables, in CQL that 2.1 and 5 both run.

prices_by_symbol is partitioned by (symbol, day): reads over a time range visit one
partition per coin and UTC day. Every read names its partitions (or reads a table bounded
by the number of coins: latest_*); whole-table figures are the server's own estimates
(`size_estimates`, `disk_usage`), never a scan. Keyspace names come from validated
settings (CQL cannot bind them); every value is bound.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from cassandra.cluster import Session

from crypto_platform.candles import periods_between

PAGE = 5000
MIB = 1 << 20

AGGREGATE_COLUMNS = (
    "symbol", "source", "window_seconds", "window_start", "arithmetic_mean", "geometric_mean",
    "harmonic_mean", "tick_count", "min_price", "max_price",
)  # fmt: skip


def _ms(moment: dt.datetime) -> int:
    return int(moment.replace(tzinfo=moment.tzinfo or dt.UTC).timestamp() * 1000)


def _utc(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC)


def days_between(start_ms: int, end_ms: int) -> list[str]:
    """The UTC days (`YYYY-MM-DD`, the partition's `day`) that `[start_ms, end_ms)` touches."""
    day = _utc(start_ms).date()
    last = _utc(max(start_ms, end_ms - 1)).date()
    days = []
    while day <= last:
        days.append(day.isoformat())
        day += dt.timedelta(days=1)
    return days


def symbols(session: Session, keyspace: str) -> list[str]:
    """Every coin that has a latest price."""
    rows = session.execute(f"SELECT symbol FROM {keyspace}.latest_prices")
    return sorted(row.symbol for row in rows)


def count_prices(session: Session, keyspace: str, symbol: str, start_ms: int, end_ms: int) -> int:
    """Ticks of one coin with event time in `[start_ms, end_ms)`."""
    statement = session.prepare(
        f"SELECT COUNT(*) FROM {keyspace}.prices_by_symbol "
        "WHERE symbol = ? AND day = ? AND event_time >= ? AND event_time < ?"
    )
    return sum(
        int(session.execute(statement, (symbol, day, _utc(start_ms), _utc(end_ms))).one()[0])
        for day in days_between(start_ms, end_ms)
    )


def prices(
    session: Session, keyspace: str, symbol: str, start_ms: int, end_ms: int
) -> Iterator[dict[str, Any]]:
    """Ticks of one coin in the window: price, event, ingest and write times (ms), paged."""
    statement = session.prepare(
        "SELECT price, event_time, ingest_time, WRITETIME(price) AS written_us "
        f"FROM {keyspace}.prices_by_symbol "
        "WHERE symbol = ? AND day = ? AND event_time >= ? AND event_time < ?"
    )
    statement.fetch_size = PAGE
    for day in days_between(start_ms, end_ms):
        for row in session.execute(statement, (symbol, day, _utc(start_ms), _utc(end_ms))):
            yield {
                "price": row.price,
                "event_time_ms": _ms(row.event_time),
                "ingest_time_ms": _ms(row.ingest_time) if row.ingest_time else None,
                "written_ms": row.written_us // 1000 if row.written_us else None,
            }


def price_keys(session: Session, keyspace: str, symbol: str, day: str) -> Iterator[tuple[str, int]]:
    """`(source, event_time_ms)` of every row in one prices_by_symbol partition, paged."""
    statement = session.prepare(
        f"SELECT source, event_time FROM {keyspace}.prices_by_symbol WHERE symbol = ? AND day = ?"
    )
    statement.fetch_size = PAGE
    for row in session.execute(statement, (symbol, day)):
        yield row.source, _ms(row.event_time)


def aggregate_windows(
    session: Session, keyspace: str, symbol: str, source: str, window_seconds: int, day: str
) -> Iterator[dict[str, Any]]:
    """Every row of one aggregates_by_symbol partition (one source's windows of `day`), paged."""
    statement = session.prepare(
        f"SELECT * FROM {keyspace}.aggregates_by_symbol "
        "WHERE symbol = ? AND source = ? AND window_seconds = ? AND day = ?"
    )
    statement.fetch_size = PAGE
    for row in session.execute(statement, (symbol, source, window_seconds, day)):
        yield row._asdict()


def candles(
    session: Session,
    keyspace: str,
    series: tuple[str, str],
    interval: str,
    since_ms: int,
    until_ms: int,
) -> Iterator[dict[str, Any]]:
    """One coin and source's candles starting in `[since_ms, until_ms)`, newest first.

    Reads only the partitions (`periods_between`) the range touches; times in ms.
    """
    statement = session.prepare(
        f"SELECT * FROM {keyspace}.candles WHERE symbol = ? AND source = ? AND interval = ? "
        "AND period = ? AND start >= ? AND start < ?"
    )
    statement.fetch_size = PAGE
    for period in periods_between(interval, since_ms, until_ms):
        values = (*series, interval, period, _utc(since_ms), _utc(until_ms))
        for row in session.execute(statement, values):
            last = row.last_event_time
            yield {
                **row._asdict(),
                "start": _ms(row.start),
                "last_event_ms": _ms(last) if last else None,
            }


def newest_ingest_ms(session: Session, keyspace: str) -> int | None:
    """Ingest time (ms) of the newest tick in latest_prices (None: the table is empty)."""
    rows = session.execute(f"SELECT ingest_time FROM {keyspace}.latest_prices", timeout=2.0)
    return max((_ms(row.ingest_time) for row in rows if row.ingest_time), default=None)


def latest_prices(session: Session, keyspace: str) -> list[dict[str, Any]]:
    """Each coin's latest price and its event time (ms)."""
    rows = session.execute(f"SELECT symbol, price, event_time FROM {keyspace}.latest_prices")
    return [
        {"symbol": row.symbol, "price": row.price, "event_time_ms": _ms(row.event_time)}
        for row in rows
    ]


def latest_aggregates(session: Session, keyspace: str) -> list[dict[str, Any]]:
    """Every latest_aggregates row: one per coin, source and window length."""
    rows = session.execute(
        f"SELECT {', '.join(AGGREGATE_COLUMNS)} FROM {keyspace}.latest_aggregates"
    )
    return [row._asdict() for row in rows]


def _has_table(session: Session, keyspace: str, table: str) -> bool:
    """Whether the server has this table (the driver's schema metadata: no round trip)."""
    known = session.cluster.metadata.keyspaces.get(keyspace)
    return known is not None and table in known.tables


def _on_every_node(session: Session, cql: str, keyspace: str) -> Iterator[Any]:
    """The rows of a node-local system table, from every live node (each knows its own)."""
    statement = session.prepare(cql)
    for host in session.cluster.metadata.all_hosts():
        if host.is_up:
            yield from session.execute(statement, (keyspace,), host=host)


def size_estimates(session: Session, keyspace: str) -> dict[str, tuple[int, int]] | None:
    """Per table: (partitions, bytes) as the nodes estimate them (`system.size_estimates`).

    Each node records its primary token ranges every 5 minutes from its SSTables (rows
    still in memtables are not counted); bytes are partitions x mean partition size,
    uncompressed. None on a server without the table (Cassandra before 2.1.5).
    """
    if not _has_table(session, "system", "size_estimates"):
        return None
    totals: dict[str, tuple[int, int]] = {}
    cql = (
        "SELECT table_name, partitions_count, mean_partition_size FROM system.size_estimates "
        "WHERE keyspace_name = ?"
    )
    for row in _on_every_node(session, cql, keyspace):
        partitions, size = totals.get(row.table_name, (0, 0))
        totals[row.table_name] = (
            partitions + row.partitions_count,
            size + row.partitions_count * row.mean_partition_size,
        )
    return totals


def disk_usage(session: Session, keyspace: str) -> dict[str, int] | None:
    """Per table: SSTable bytes on disk, summed over the nodes (`system_views.disk_usage`).

    The server rounds each node's figure up to a whole MiB. None on a server without the
    virtual table (Cassandra before 4.0).
    """
    if not _has_table(session, "system_views", "disk_usage"):
        return None
    totals: dict[str, int] = {}
    cql = "SELECT table_name, mebibytes FROM system_views.disk_usage WHERE keyspace_name = ?"
    for row in _on_every_node(session, cql, keyspace):
        totals[row.table_name] = totals.get(row.table_name, 0) + row.mebibytes * MIB
    return totals
