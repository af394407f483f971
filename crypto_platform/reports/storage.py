"""Storage growth: what MongoDB and Cassandra hold, on disk and per tick, and where it is going.

Counts come from the servers (collStats, COUNT(*)); bytes on disk from the local
servers' data directories (as `du` counts them; None when the servers run elsewhere).
Growth is measured against the previous report when there is one, and projected at
the ingest rate observed over the last hour, beside seed 004's arithmetic for that rate.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crypto_platform.reports.disk import bytes_on_disk
from crypto_platform.reports.stores import Stores
from crypto_platform.stack.cassandra_server import CassandraServer
from crypto_platform.stack.mongo_server import MongoServer
from crypto_platform.storage import cassandra, cassandra_queries, mongo_queries

# Seed 004: 3,600 messages an hour make ~218 MB a month, i.e. ~84 bytes per message.
SEED_MESSAGES_PER_HOUR = 3600
SEED_BYTES_PER_MONTH = 218e6
HOURS_PER_MONTH = 24 * 30
SEED_BYTES_PER_MESSAGE = SEED_BYTES_PER_MONTH / (SEED_MESSAGES_PER_HOUR * HOURS_PER_MONTH)


@dataclass(frozen=True)
class Previous:
    """What an earlier report measured: when, total bytes, and ticks stored."""

    taken_at: float
    total_bytes: int
    ticks: int


def _cassandra_dirs(stores: Stores) -> tuple[Path, Path]:
    data = CassandraServer(stores.settings).data_path
    return data / "data" / stores.settings.cassandra_keyspace, data / "commitlog"


def _sstable_bytes(keyspace_dir: Path, table: str) -> int | None:
    """Bytes of a table's SSTable files (what nodetool cfstats calls live space).

    A table's directory is `<table>-<id>` (a dropped and re-created table leaves old
    ones). Rows still in memtables are only in the commit log: 0 until the first flush.
    """
    if not keyspace_dir.exists():
        return None
    dirs = [path for path in keyspace_dir.iterdir() if path.name.startswith(f"{table}-")]
    return sum(_file_bytes(file) for path in dirs for file in path.rglob("*") if file.is_file())


def _file_bytes(file: Path) -> int:
    """A file's size; 0 when compaction removed it while we walked."""
    try:
        return file.stat().st_size
    except FileNotFoundError:
        return 0


def mongodb_storage(stores: Stores) -> dict[str, Any]:
    stats = mongo_queries.collection_stats(stores.prices)
    data_dir = MongoServer(stores.settings).data_path
    return {
        "collection": f"{stores.settings.mongo_database}.{stores.settings.mongo_collection}",
        **stats,
        "data_dir": str(data_dir),
        "data_dir_bytes_on_disk": bytes_on_disk(data_dir),
    }


def cassandra_storage(stores: Stores) -> dict[str, Any]:
    keyspace = stores.settings.cassandra_keyspace
    keyspace_dir, commitlog = _cassandra_dirs(stores)
    tables = {}
    for table in cassandra.TABLES:
        rows = cassandra_queries.count_rows(stores.cassandra(), keyspace, table)
        live = _sstable_bytes(keyspace_dir, table)
        tables[table] = {
            "rows": rows,
            "sstable_bytes": live,
            "bytes_per_row": round(live / rows, 1) if live and rows else None,
        }
    return {
        "keyspace": keyspace,
        "tables": tables,
        "keyspace_dir": str(keyspace_dir),
        "keyspace_bytes_on_disk": bytes_on_disk(keyspace_dir),
        # Shared by every keyspace; holds what memtables have not flushed to SSTables yet.
        "commitlog_bytes_on_disk": bytes_on_disk(commitlog),
    }


def _mongo_bytes(mongodb: dict[str, Any]) -> int:
    on_disk = mongodb["data_dir_bytes_on_disk"]
    return (
        on_disk if on_disk is not None else mongodb["data_size_bytes"] + mongodb["index_size_bytes"]
    )


def _per_tick(value: int, ticks: int) -> float | None:
    return round(value / ticks, 1) if ticks else None


def storage_report(stores: Stores, previous: Previous | None = None) -> dict[str, Any]:
    """The storage-growth report as a JSON-able dict (the asset's metadata comes from it).

    Two costs per tick: `on_disk` (everything on disk, fixed overhead included: large
    while the stores are small) and `data` (MongoDB documents and indexes plus Cassandra
    SSTables: what each further tick adds). The projection at the observed rate uses
    `data`; the growth between reports uses what is really on disk.
    """
    now = time.time()
    mongodb = mongodb_storage(stores)
    cassandra_part = cassandra_storage(stores)
    ticks = mongodb["documents"]
    total = _mongo_bytes(mongodb) + (cassandra_part["keyspace_bytes_on_disk"] or 0)
    data = (
        mongodb["data_size_bytes"]
        + mongodb["index_size_bytes"]
        + sum(table["sstable_bytes"] or 0 for table in cassandra_part["tables"].values())
    )
    per_hour = mongo_queries.counts_since(stores.prices, {"hour": int((now - 3600) * 1000)})["hour"]
    data_per_tick = _per_tick(data, ticks)
    projected = data_per_tick * per_hour if data_per_tick is not None else None
    report: dict[str, Any] = {
        "taken_at": now,
        "mongodb": mongodb,
        "cassandra": cassandra_part,
        "total_bytes": total,
        "ticks": ticks,
        "data_bytes": data,
        "bytes_per_tick": {"on_disk": _per_tick(total, ticks), "data": data_per_tick},
        "ingest_rate_per_hour": per_hour,
        "projection": {
            "bytes_per_day": round(projected * 24) if projected is not None else None,
            "bytes_per_month": round(projected * HOURS_PER_MONTH)
            if projected is not None
            else None,
        },
        "seed_004": {
            "bytes_per_message": round(SEED_BYTES_PER_MESSAGE, 1),
            "bytes_per_month_at_observed_rate": round(
                SEED_BYTES_PER_MESSAGE * per_hour * HOURS_PER_MONTH
            ),
            "bytes_per_month_at_3600_per_hour": SEED_BYTES_PER_MONTH,
        },
        "growth": None,
    }
    if previous is not None and now > previous.taken_at:
        seconds = now - previous.taken_at
        per_s = (total - previous.total_bytes) / seconds
        report["growth"] = {
            "since": previous.taken_at,
            "seconds": round(seconds, 1),
            "bytes": total - previous.total_bytes,
            "ticks": ticks - previous.ticks,
            "bytes_per_day": round(per_s * 86400),
            "bytes_per_month": round(per_s * 86400 * 30),
        }
    return report
