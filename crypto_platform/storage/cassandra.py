"""Cassandra: query-first tables for prices and aggregates, in CQL that 2.1 and 5 both run.

Each read the API makes has its own table: a symbol's history (partitioned by symbol and
day, so a partition stays bounded) and the latest value per symbol (keyed by symbol).
"""

from __future__ import annotations

import contextlib
import ssl

from cassandra import ConsistencyLevel, InvalidRequest
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, Session

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
            market_cap double, volume_24h double, change_24h_pct double,
            number_of_markets bigint, total_supply double, uuid text
        )""",
    "aggregates_by_symbol": """
        CREATE TABLE IF NOT EXISTS {ks}.aggregates_by_symbol (
            symbol text, source text, window_seconds int, day text, window_start timestamp,
            window_end timestamp, arithmetic_mean double, geometric_mean double,
            harmonic_mean double, tick_count bigint, min_price double, max_price double,
            first_price double, last_price double, updated_at timestamp,
            PRIMARY KEY ((symbol, source, window_seconds, day), window_start)
        ) WITH CLUSTERING ORDER BY (window_start DESC)""",
    "latest_aggregates": """
        CREATE TABLE IF NOT EXISTS {ks}.latest_aggregates (
            symbol text, source text, window_seconds int, window_start timestamp,
            window_end timestamp, arithmetic_mean double, geometric_mean double,
            harmonic_mean double, tick_count bigint, min_price double, max_price double,
            first_price double, last_price double, updated_at timestamp,
            PRIMARY KEY ((symbol), window_seconds, source)
        )""",
    # OHLC per coin, source and interval; a partition is a day, month or year of one
    # interval's candles (crypto_platform.candles: `period_of`).
    "candles": """
        CREATE TABLE IF NOT EXISTS {ks}.candles (
            symbol text, source text, interval text, period text, start timestamp,
            open double, high double, low double, close double, tick_count bigint,
            last_event_time timestamp, updated_at timestamp,
            PRIMARY KEY ((symbol, source, interval, period), start)
        ) WITH CLUSTERING ORDER BY (start DESC)""",
}
# Tables whose windows are per source: an earlier release keyed them by coin alone, mixing
# sources in one window. A key cannot be altered; `ensure_schema` drops such a table
# (its rows are derived) and creates it anew, and the repair recomputes it from MongoDB.
SOURCED_TABLES = ("aggregates_by_symbol", "latest_aggregates")


# Columns added after a table's first release: `ensure_schema` adds them to older tables
# (CQL 2.1 has no ALTER ... ADD IF NOT EXISTS, so the driver's metadata says what is missing).
ADDED_COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "latest_prices": (
        ("number_of_markets", "bigint"),
        ("total_supply", "double"),
        ("uuid", "text"),
    ),
}


# The settings `connect` reads (processes that connect by themselves, such as Spark's
# Python workers, are handed exactly these).
CONNECTION = (
    "cassandra_hosts", "cassandra_port", "cassandra_protocol_version", "cassandra_username",
    "cassandra_password", "cassandra_tls", "cassandra_tls_cafile", "cassandra_consistency",
)  # fmt: skip


def connect(settings: Settings, *, connect_timeout: float = 10.0) -> tuple[Cluster, Session]:
    """A cluster and session with the configured protocol version (the driver never guesses).

    Credentials, TLS and the default consistency level come from the settings too.
    """
    auth = None
    if settings.cassandra_username:
        password = settings.cassandra_password
        auth = PlainTextAuthProvider(
            settings.cassandra_username, password.get_secret_value() if password else ""
        )
    tls = None
    if settings.cassandra_tls:
        cafile = settings.cassandra_tls_cafile
        tls = ssl.create_default_context(cafile=str(cafile) if cafile else None)
    consistency = ConsistencyLevel.name_to_value[settings.cassandra_consistency]
    cluster = Cluster(
        settings.cassandra_hosts,
        port=settings.cassandra_port,
        protocol_version=settings.cassandra_protocol_version,
        connect_timeout=connect_timeout,
        # The control connection's metadata queries wait as long as the connection itself
        # (the driver's 2 s default times out on a loaded laptop while Spark starts).
        control_connection_timeout=connect_timeout,
        auth_provider=auth,
        ssl_context=tls,
        execution_profiles={EXEC_PROFILE_DEFAULT: ExecutionProfile(consistency_level=consistency)},
    )
    return cluster, cluster.connect()


def ensure_schema(
    session: Session,
    keyspace: str,
    replication_factor: int = 1,
    *,
    prices_ttl_days: int | None = None,
) -> tuple[list[str], list[str]]:
    """Create the keyspace and the tables if missing; return them and those rebuilt.

    A table is rebuilt when an earlier release keyed it without the source (`SOURCED_TABLES`).
    `prices_ttl_days` (CRYPTO_CASSANDRA_PRICES_TTL_DAYS) is prices_by_symbol's default TTL,
    set or changed in place (None: 0, rows never expire); it applies to rows written after.
    """
    session.execute(
        f"CREATE KEYSPACE IF NOT EXISTS {keyspace} WITH replication = "
        f"{{'class': 'SimpleStrategy', 'replication_factor': {int(replication_factor)}}}"
    )
    rebuilt = _drop_unsourced(session, keyspace)
    for statement in TABLES.values():
        session.execute(statement.format(ks=keyspace))
    _add_missing_columns(session, keyspace)
    _set_default_ttl(session, keyspace, "prices_by_symbol", (prices_ttl_days or 0) * 86_400)
    return list(TABLES), rebuilt


def _drop_unsourced(session: Session, keyspace: str) -> list[str]:
    """Drop the SOURCED_TABLES an earlier release created without a `source` column."""
    session.cluster.refresh_schema_metadata()
    tables = session.cluster.metadata.keyspaces[keyspace].tables
    stale = [t for t in SOURCED_TABLES if t in tables and "source" not in tables[t].columns]
    for table in stale:
        session.execute(f"DROP TABLE {keyspace}.{table}")
    return stale


def _set_default_ttl(session: Session, keyspace: str, table: str, ttl_s: int) -> None:
    session.cluster.refresh_table_metadata(keyspace, table)
    options = session.cluster.metadata.keyspaces[keyspace].tables[table].options
    if int(options.get("default_time_to_live") or 0) != ttl_s:
        session.execute(f"ALTER TABLE {keyspace}.{table} WITH default_time_to_live = {int(ttl_s)}")


def _add_missing_columns(session: Session, keyspace: str) -> None:
    """Bring a table created by an earlier release up to date, idempotently."""
    cluster = session.cluster
    for table, columns in ADDED_COLUMNS.items():
        cluster.refresh_table_metadata(keyspace, table)
        existing = cluster.metadata.keyspaces[keyspace].tables[table].columns
        for name, cql_type in columns:
            if name not in existing:
                # Another process provisioning at the same moment may win the race.
                with contextlib.suppress(InvalidRequest):
                    session.execute(f"ALTER TABLE {keyspace}.{table} ADD {name} {cql_type}")
