"""`storage_growth_report` and `throughput_report`: hourly, measured on the real stores.

The reports themselves are `crypto_platform.reports.storage` / `.throughput` (the CLI
prints the same); here they become metadata: typed tables to read and numbers the UI
plots across materialisations.
"""

from typing import Any

import dagster as dg

from crypto_platform.defs.analytics.assets import (
    CASSANDRA_AGGREGATES_BY_SYMBOL,
    CASSANDRA_CANDLES,
    CASSANDRA_LATEST_AGGREGATES,
    CASSANDRA_LATEST_PRICES,
    CASSANDRA_PRICES_BY_SYMBOL,
)
from crypto_platform.defs.automation.conditions import EVERY_HOUR
from crypto_platform.defs.reports.metadata import flat_numbers, table
from crypto_platform.defs.resources.clients import (
    CassandraResource,
    KafkaResource,
    MongoResource,
    stores_for,
)
from crypto_platform.defs.resources.unreachable import explained
from crypto_platform.defs.streams.assets import KAFKA_PRICES, KAFKA_PRICES_DLQ, MONGO_PRICES, OWNERS
from crypto_platform.reports.storage import Previous, storage_report
from crypto_platform.reports.throughput import throughput_report

GROUP = "reports"
# Sizes are in bytes, rates per unit of time, latencies in ms, batch durations in s;
# `bytes_each`: per MongoDB document, or per Cassandra partition.
STORE_COLUMNS = (("store", "string"), ("documents", "int"), ("partitions", "int"),
                 ("data_size", "int"), ("index_size", "int"), ("memtable_size", "int"),
                 ("on_disk", "int"), ("bytes_each", "float"))  # fmt: skip
PROJECTION_COLUMNS = (("basis", "string"), ("per_day", "float"), ("per_month", "float"))
RATE_COLUMNS = (("measured at", "string"), ("per_second", "float"), ("per_minute", "float"),
                ("per_hour", "float"), ("per_day", "float"))  # fmt: skip
LATENCY_COLUMNS = (("path", "string"), ("p50", "float"), ("p95", "float"), ("p99", "float"),
                   ("max", "float"), ("samples", "int"))  # fmt: skip
SPARK_COLUMNS = (("query", "string"), ("batches", "int"), ("p50", "float"), ("p95", "float"),
                 ("p99", "float"), ("max", "float"))  # fmt: skip

STORAGE_GROWTH_REPORT = dg.AssetKey(["reports", "storage_growth_report"])
THROUGHPUT_REPORT = dg.AssetKey(["reports", "throughput_report"])


def _previous(context: dg.AssetExecutionContext) -> Previous | None:
    """What the last materialisation measured, to compute growth since then."""
    event = context.instance.get_latest_materialization_event(STORAGE_GROWTH_REPORT)
    materialization = event.asset_materialization if event else None
    if materialization is None:
        return None
    metadata = materialization.metadata
    try:
        return Previous(
            taken_at=float(metadata["taken_at"].value),
            total_bytes=int(metadata["total_bytes"].value),
            ticks=int(metadata["ticks"].value),
        )
    except (KeyError, TypeError, ValueError):
        return None


def _storage_tables(report: dict[str, Any]) -> dict[str, dg.MetadataValue]:
    mongodb, cassandra = report["mongodb"], report["cassandra"]
    sizes = (mongodb["data_size_bytes"], mongodb["index_size_bytes"])
    documents = mongodb["documents"]
    stores = [
        {"store": f"mongodb {mongodb['collection']}", "documents": documents,
         "data_size": sizes[0], "index_size": sizes[1], "on_disk": mongodb["on_disk_bytes"],
         "bytes_each": round(sum(sizes) / documents, 1)
         if documents and None not in sizes else None},
        *({"store": f"cassandra {cassandra['keyspace']}.{name}", "partitions": t["partitions"],
           "data_size": t["sstable_bytes"], "memtable_size": t["memtable_bytes"],
           "bytes_each": t["bytes_per_partition"]}
          for name, t in cassandra["tables"].items()),
        {"store": f"cassandra {cassandra['keyspace']} (keyspace)",
         "data_size": cassandra["sstable_bytes"], "on_disk": cassandra["on_disk_bytes"]},
        {"store": "cassandra commit log (all keyspaces, unflushed rows)",
         "on_disk": cassandra["commitlog_bytes_on_disk"]},
    ]  # fmt: skip
    growth = report["growth"] or {}
    projection = [
        {"basis": "measured growth since the last report", "per_day": growth.get("bytes_per_day"),
         "per_month": growth.get("bytes_per_month")},
        {"basis": f"{report['bytes_per_tick']['data']} data bytes per tick x "
                  f"{report['ingest_rate_per_hour']} ticks/h (last hour)",
         "per_day": report["projection"]["bytes_per_day"],
         "per_month": report["projection"]["bytes_per_month"]},
        {"basis": "seed 004 arithmetic at the same rate", "per_day": None,
         "per_month": report["seed_004"]["bytes_per_month_at_observed_rate"]},
    ]  # fmt: skip
    return {
        "stores": table(stores, STORE_COLUMNS),
        "projection": table(projection, PROJECTION_COLUMNS),
    }


@dg.asset(
    key=STORAGE_GROWTH_REPORT,
    description="MongoDB and Cassandra: documents/rows, data and index size, bytes on disk, "
    "bytes per row and per tick; growth since the last report, projected per day and month "
    "at the observed ingest rate, beside seed 004's arithmetic.",
    group_name=GROUP,
    kinds={"mongodb", "cassandra", "python"},
    owners=OWNERS,
    deps=[
        MONGO_PRICES,
        CASSANDRA_PRICES_BY_SYMBOL,
        CASSANDRA_LATEST_PRICES,
        CASSANDRA_AGGREGATES_BY_SYMBOL,
        CASSANDRA_LATEST_AGGREGATES,
        CASSANDRA_CANDLES,
    ],
    automation_condition=EVERY_HOUR,
)
def storage_growth_report(
    context: dg.AssetExecutionContext,
    mongo: MongoResource,
    cassandra: CassandraResource,
) -> dg.MaterializeResult:
    stores = stores_for(mongo=mongo, cassandra=cassandra)
    with explained(stores.settings):
        report = storage_report(stores, _previous(context))
    return dg.MaterializeResult(metadata={**_storage_tables(report), **flat_numbers(report)})


@dg.asset(
    key=THROUGHPUT_REPORT,
    description="Ticks per second/minute/hour/day from Kafka offsets, MongoDB and Cassandra; "
    "ingest-to-write latency p50/p95/p99 for MongoDB and Cassandra; consumer lag; "
    "dead letters; Spark batch durations from the checkpoint.",
    group_name=GROUP,
    kinds={"kafka", "mongodb", "cassandra", "python"},
    owners=OWNERS,
    deps=[KAFKA_PRICES, KAFKA_PRICES_DLQ, MONGO_PRICES, CASSANDRA_PRICES_BY_SYMBOL],
    automation_condition=EVERY_HOUR,
)
def throughput_report_asset(
    kafka: KafkaResource, mongo: MongoResource, cassandra: CassandraResource
) -> dg.MaterializeResult:
    stores = stores_for(kafka=kafka, mongo=mongo, cassandra=cassandra)
    with explained(stores.settings):
        report = throughput_report(stores)
    ticks = [{"measured at": store, **rates} for store, rates in report["ticks"].items()]
    latency = [
        {"path": path, **values}
        for path, values in report["latency_ms"].items()
        if isinstance(values, dict)
    ]
    spark = [
        {"query": name, "batches": query["batches"], **query["duration_s"]}
        for name, query in report["spark"].items()
        if isinstance(query, dict)
    ]
    return dg.MaterializeResult(
        metadata={
            "ticks": table(ticks, RATE_COLUMNS),
            "latency_ms": table(latency, LATENCY_COLUMNS),
            "spark_batch_s": table(spark, SPARK_COLUMNS),
            **flat_numbers(report),
        }
    )
