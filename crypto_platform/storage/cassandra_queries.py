"""Read-only queries over the Cassandra tables, in CQL that 2.1 and 5 both run.

prices_by_symbol is partitioned by (symbol, day): reads over a time range visit one
partition per coin and UTC day. Keyspace names come from validated settings (CQL
cannot bind them); every value is bound.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from cassandra.cluster import Session
from cassandra.query import SimpleStatement

from crypto_platform.storage.cassandra import TABLES

PAGE = 5000
# A full-table COUNT(*) takes longer than the driver's default 10 s on a big table.
COUNT_TIMEOUT_S = 120.0

AGGREGATE_COLUMNS = (
    "symbol", "source", "window_start", "arithmetic_mean", "geometric_mean", "harmonic_mean",
    "tick_count", "min_price", "max_price",
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


def count_rows(session: Session, keyspace: str, table: str) -> int:
    """Rows of a table (a full scan on the server: fine for reports, not for hot paths)."""
    if table not in TABLES:
        raise ValueError(f"unknown table {table!r}")
    query = f"SELECT COUNT(*) FROM {keyspace}.{table}"
    return int(session.execute(query, timeout=COUNT_TIMEOUT_S).one()[0])


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


def aggregate_rows(session: Session, keyspace: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every row of aggregates_by_symbol and latest_aggregates, as (table, row), paged."""
    for table in ("aggregates_by_symbol", "latest_aggregates"):
        statement = SimpleStatement(
            f"SELECT {', '.join(AGGREGATE_COLUMNS)} FROM {keyspace}.{table}", fetch_size=PAGE
        )
        for row in session.execute(statement):
            yield table, row._asdict()
