"""What Cassandra says its tables hold: partitions and bytes, from the server, never a scan.

Two ways, the first the server offers: over CQL, `system.size_estimates` (Cassandra 2.1.5
and later: the Docker deployment's Cassandra 5), with `system_views.disk_usage` for the
bytes on disk where the server has it (4.0 and later); else over JMX, `nodetool cfstats`
(the local Cassandra 2.1.0, which has neither table but opens JMX on loopback).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cassandra.cluster import Session

from crypto_platform.reports import nodetool
from crypto_platform.settings import Settings
from crypto_platform.storage import cassandra_queries
from crypto_platform.storage.cassandra import TABLES

CQL = "cql"
JMX = "jmx"


@dataclass(frozen=True)
class TableFigures:
    """A table's figures as the server reports them (None: this server does not say)."""

    partitions: int | None = None
    sstable_bytes: int | None = None  # SSTables on disk, or their uncompressed estimate
    memtable_bytes: int | None = None  # not flushed yet (JMX only)


@dataclass(frozen=True)
class KeyspaceFigures:
    """Every table's figures, how they were read, and why not when they could not be."""

    source: str | None
    tables: dict[str, TableFigures] = field(default_factory=dict)
    note: str = ""


def keyspace_figures(session: Session, settings: Settings) -> KeyspaceFigures:
    """The project's tables' figures from CQL where the server has them, else from JMX."""
    keyspace = settings.cassandra_keyspace
    estimates = cassandra_queries.size_estimates(session, keyspace)
    if estimates is not None:
        on_disk = cassandra_queries.disk_usage(session, keyspace)
        tables = {}
        for table in TABLES:
            partitions, estimated_bytes = estimates.get(table, (0, 0))
            sstable_bytes = on_disk.get(table, 0) if on_disk is not None else estimated_bytes
            tables[table] = TableFigures(partitions, sstable_bytes)
        bytes_from = "system_views.disk_usage" if on_disk is not None else "the estimate"
        return KeyspaceFigures(
            CQL,
            tables,
            "system.size_estimates (SSTables only, refreshed every 5 minutes); "
            f"SSTable bytes from {bytes_from}",
        )
    try:
        reported = nodetool.cfstats(settings, keyspace)
    except nodetool.NodetoolUnavailable as error:
        return KeyspaceFigures(None, note=f"no system.size_estimates, and {error}")
    return KeyspaceFigures(
        JMX,
        {table: TableFigures(**reported.get(table, {})) for table in TABLES},
        "nodetool cfstats over JMX (this server has no system.size_estimates)",
    )
