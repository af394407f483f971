"""Cassandra: query-first tables for prices and aggregates, in CQL that 2.1 and 5 both run.

Each read the API makes has its own table: a symbol's history (partitioned by symbol and
day, so a partition stays bounded) and the latest value per symbol (keyed by symbol).
"""

from __future__ import annotations

from cassandra.cluster import Cluster, Session

from crypto_platform.settings import Settings

TABLES: dict[str, str] = {
    "prices_by_symbol": """
        CREATE TABLE IF NOT EXISTS {ks}.prices_by_symbol (
            symbol text, day text, event_time timestamp, source text,
            price double, quote text, ingest_time timestamp,
            PRIMARY KEY ((symbol, day), event_time, source)
        ) WITH CLUSTERING ORDER BY (event_time DESC, source ASC)""",
    "latest_prices": """
        CREATE TABLE IF NOT EXISTS {ks}.latest_prices (
            symbol text PRIMARY KEY, source text, price double, quote text,
            event_time timestamp, ingest_time timestamp, name text,
            market_cap double, volume_24h double, change_24h_pct double
        )""",
    "aggregates_by_symbol": """
        CREATE TABLE IF NOT EXISTS {ks}.aggregates_by_symbol (
            symbol text, window_seconds int, day text, window_start timestamp,
            window_end timestamp, arithmetic_mean double, geometric_mean double,
            harmonic_mean double, tick_count bigint, min_price double, max_price double,
            first_price double, last_price double, updated_at timestamp,
            PRIMARY KEY ((symbol, window_seconds, day), window_start)
        ) WITH CLUSTERING ORDER BY (window_start DESC)""",
    "latest_aggregates": """
        CREATE TABLE IF NOT EXISTS {ks}.latest_aggregates (
            symbol text, window_seconds int, window_start timestamp, window_end timestamp,
            arithmetic_mean double, geometric_mean double, harmonic_mean double,
            tick_count bigint, min_price double, max_price double, first_price double,
            last_price double, updated_at timestamp,
            PRIMARY KEY ((symbol), window_seconds)
        )""",
}


def connect(settings: Settings, *, connect_timeout: float = 10.0) -> tuple[Cluster, Session]:
    """A cluster and session with the configured protocol version (the driver never guesses)."""
    cluster = Cluster(
        settings.cassandra_hosts,
        port=settings.cassandra_port,
        protocol_version=settings.cassandra_protocol_version,
        connect_timeout=connect_timeout,
    )
    return cluster, cluster.connect()


def ensure_schema(session: Session, keyspace: str, replication_factor: int = 1) -> list[str]:
    """Create the keyspace and the four tables if missing; return the table names."""
    session.execute(
        f"CREATE KEYSPACE IF NOT EXISTS {keyspace} WITH replication = "
        f"{{'class': 'SimpleStrategy', 'replication_factor': {int(replication_factor)}}}"
    )
    for statement in TABLES.values():
        session.execute(statement.format(ks=keyspace))
    return list(TABLES)
