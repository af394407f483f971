"""Storage growth: what MongoDB and Cassandra hold, on disk and per tick, and where it is going.

Every figure comes from the servers themselves, whatever their size and wherever they
run: MongoDB's collStats (documents, data, storage and index sizes) and Cassandra's own
table figures (`cassandra_sizes`: partitions and SSTable bytes). Where the local stack's
data directories are visible here, their bytes on disk (as `du` counts them) are added
and preferred as the on-disk figure (the local SecantusDB reports its uncompressed size as
storageSize). Growth is measured against the previous report when there is one, and
projected at the ingest rate observed over the last hour, beside seed 004's arithmetic
for that rate.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crypto_platform.reports.cassandra_sizes import keyspace_figures
from crypto_platform.reports.disk import bytes_on_disk
from crypto_platform.reports.stores import Stores
from crypto_platform.stack.cassandra_server import CassandraServer
from crypto_platform.stack.mongo_server import MongoServer
from crypto_platform.storage import mongo_queries

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


def _total(values: Iterable[int | None]) -> int | None:
    """The sum, or None when any part is unknown (a partial sum would look like a figure)."""
    parts = list(values)
    known = [value for value in parts if value is not None]
    return sum(known) if len(known) == len(parts) else None


def _ratio(value: int | None, count: int | None) -> float | None:
    return round(value / count, 1) if value is not None and count else None


def _local_or(local: int | None, server: int | None) -> int | None:
    return local if local is not None else server


def mongodb_storage(stores: Stores) -> dict[str, Any]:
    stats = mongo_queries.collection_stats(stores.prices)
    data_dir = MongoServer(stores.settings).data_path
    local = bytes_on_disk(data_dir)
    server = stats["storage_size_bytes"] + stats["index_size_bytes"] if stats else None
    return {
        "collection": f"{stores.settings.mongo_database}.{stores.settings.mongo_collection}",
        "server_statistics": "collStats"
        if stats
        else f"none: collStats did not answer within {mongo_queries.STATS_BUDGET_MS} ms",
        **(stats or dict.fromkeys(mongo_queries.COLLECTION_STATS)),
        "data_dir": str(data_dir),
        "data_dir_bytes_on_disk": local,
        "on_disk_bytes": _local_or(local, server),
    }


def _cassandra_dirs(stores: Stores) -> tuple[Path, Path]:
    data = CassandraServer(stores.settings).data_path
    return data / "data" / stores.settings.cassandra_keyspace, data / "commitlog"


def cassandra_storage(stores: Stores) -> dict[str, Any]:
    figures = keyspace_figures(stores.cassandra(), stores.settings)
    tables = {
        name: {
            "partitions": table.partitions,
            "sstable_bytes": table.sstable_bytes,
            "memtable_bytes": table.memtable_bytes,
            "bytes_per_partition": _ratio(table.sstable_bytes, table.partitions),
        }
        for name, table in figures.tables.items()
    }
    server = _total(table.sstable_bytes for table in figures.tables.values()) if tables else None
    keyspace_dir, commitlog = _cassandra_dirs(stores)
    local = bytes_on_disk(keyspace_dir)
    return {
        "keyspace": stores.settings.cassandra_keyspace,
        "source": figures.source,
        "note": figures.note,
        "tables": tables,
        "sstable_bytes": server,
        "keyspace_dir": str(keyspace_dir),
        "keyspace_bytes_on_disk": local,
        # Shared by every keyspace; holds what memtables have not flushed to SSTables yet.
        "commitlog_bytes_on_disk": bytes_on_disk(commitlog),
        "on_disk_bytes": _local_or(local, server),
    }


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
    total = _total([mongodb["on_disk_bytes"], cassandra_part["on_disk_bytes"]])
    data = _total(
        [mongodb["data_size_bytes"], mongodb["index_size_bytes"], cassandra_part["sstable_bytes"]]
    )
    per_hour = mongo_queries.counts_since(stores.prices, {"hour": int((now - 3600) * 1000)})["hour"]
    data_per_tick = _ratio(data, ticks)
    projected = data_per_tick * per_hour if data_per_tick is not None else None
    report: dict[str, Any] = {
        "taken_at": now,
        "mongodb": mongodb,
        "cassandra": cassandra_part,
        "total_bytes": total,
        "ticks": ticks,
        "data_bytes": data,
        "bytes_per_tick": {"on_disk": _ratio(total, ticks), "data": data_per_tick},
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
    if previous is not None and total is not None and now > previous.taken_at:
        seconds = now - previous.taken_at
        per_s = (total - previous.total_bytes) / seconds
        report["growth"] = {
            "since": previous.taken_at,
            "seconds": round(seconds, 1),
            "bytes": total - previous.total_bytes,
            "ticks": ticks - previous.ticks if ticks is not None else None,
            "bytes_per_day": round(per_s * 86400),
            "bytes_per_month": round(per_s * 86400 * 30),
        }
    return report
