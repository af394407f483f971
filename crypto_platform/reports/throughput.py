"""Throughput and latency, measured on the systems themselves.

Ticks per second/minute/hour/day from three places: Kafka (end offsets, and offsets
by message timestamp), MongoDB (`ingest_time_ms`) and Cassandra (`event_time`).
End-to-end latency: ingest time to the hand-over to MongoDB (`handed_at_ms`, or
`stored_at_ms` in documents stored before the rename: the sink stamps it as it hands the
batch over, so the write itself is left out, and the report says so; the sink's progress
times the write, `crypto-platform bench` measures to the commit) and to the Cassandra
write (the cell's WRITETIME). Plus the sink group's lag,
the dead-letter count, and Spark batch durations read from the checkpoint (the time
between a batch's offsets/N and commits/N files), which needs no running Spark.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kafka import TopicPartition

from crypto_platform.reports.stores import KafkaClients, Stores
from crypto_platform.settings import Settings
from crypto_platform.storage import cassandra_queries, mongo_queries

WINDOWS_S = {"minute": 60, "hour": 3600, "day": 86400}
LATENCY_SAMPLE = 10_000
MONGODB_TIME = (
    "handed_at_ms (stored_at_ms in documents stored before the rename): when the sink handed "
    "the tick's batch to MongoDB, before the write; the sink's progress times the write "
    "itself (write_ms_p50, write_ms_p99)"
)
SPARK_BATCHES = 100


def percentiles(values: Sequence[float], digits: int = 1) -> dict[str, float | int | None]:
    """p50, p95, p99 and max (None when there is nothing to measure)."""
    if not values:
        return {"p50": None, "p95": None, "p99": None, "max": None, "samples": 0}
    if len(values) == 1:
        cuts = [float(values[0])] * 99
    else:
        cuts = statistics.quantiles(values, n=100, method="inclusive")
    return {
        "p50": round(cuts[49], digits),
        "p95": round(cuts[94], digits),
        "p99": round(cuts[98], digits),
        "max": round(float(max(values)), digits),
        "samples": len(values),
    }


def _partitions(kafka: KafkaClients, topic: str) -> list[TopicPartition]:
    ids = kafka.consumer.partitions_for_topic(topic) or set()
    return [TopicPartition(topic, p) for p in sorted(ids)]


def topic_size(kafka: KafkaClients, topic: str) -> int:
    """Messages the topic holds now (end minus beginning offsets)."""
    partitions = _partitions(kafka, topic)
    if not partitions:
        return 0
    ends = kafka.consumer.end_offsets(partitions)
    starts = kafka.consumer.beginning_offsets(partitions)
    return sum(ends[tp] - starts[tp] for tp in partitions)


def end_offsets(kafka: KafkaClients, topic: str) -> dict[TopicPartition, int]:
    partitions = _partitions(kafka, topic)
    return kafka.consumer.end_offsets(partitions) if partitions else {}


def messages_since(kafka: KafkaClients, topic: str, since_ms: int) -> int:
    """Messages whose timestamp is at or after `since_ms` (ListOffsets by time)."""
    ends = end_offsets(kafka, topic)
    if not ends:
        return 0
    found = kafka.consumer.offsets_for_times({tp: since_ms for tp in ends})
    return sum(
        end - (found[tp].offset if found.get(tp) is not None else end) for tp, end in ends.items()
    )


def committed_offsets(kafka: KafkaClients, group: str, topic: str) -> dict[TopicPartition, int]:
    offsets = kafka.admin.list_group_offsets(group).get(group, {})
    return {
        tp: meta.offset for tp, meta in offsets.items() if tp.topic == topic and meta.offset >= 0
    }


def consumer_lag(kafka: KafkaClients, settings: Settings) -> int:
    """Messages of the tick topic the sink's group has not committed yet."""
    ends = end_offsets(kafka, settings.kafka_topic)
    committed = committed_offsets(kafka, settings.kafka_consumer_group, settings.kafka_topic)
    return sum(max(0, end - committed.get(tp, 0)) for tp, end in ends.items())


def _rates(counts: dict[str, int]) -> dict[str, float | int]:
    return {
        "per_second": round(counts["minute"] / 60, 2),
        "per_minute": counts["minute"],
        "per_hour": counts["hour"],
        "per_day": counts["day"],
    }


def kafka_throughput(stores: Stores, now_ms: int) -> dict[str, Any]:
    kafka, topic = stores.kafka(), stores.settings.kafka_topic
    counts = {
        name: messages_since(kafka, topic, now_ms - seconds * 1000)
        for name, seconds in WINDOWS_S.items()
    }
    return {"total": sum(end_offsets(kafka, topic).values()), **_rates(counts)}


def mongodb_throughput(stores: Stores, now_ms: int) -> dict[str, Any]:
    since = {name: now_ms - seconds * 1000 for name, seconds in WINDOWS_S.items()}
    return _rates(mongo_queries.counts_since(stores.prices, since))


def cassandra_throughput(stores: Stores, now_ms: int, coins: list[str]) -> dict[str, Any]:
    session, keyspace = stores.cassandra(), stores.settings.cassandra_keyspace
    counts = {
        name: sum(
            cassandra_queries.count_prices(session, keyspace, coin, now_ms - seconds * 1000, now_ms)
            for coin in coins
        )
        for name, seconds in WINDOWS_S.items()
    }
    return _rates(counts)


def cassandra_latencies_ms(
    stores: Stores, coins: list[str], since_ms: int, now_ms: int
) -> list[int]:
    session, keyspace = stores.cassandra(), stores.settings.cassandra_keyspace
    latencies = []
    for coin in coins:
        for row in cassandra_queries.prices(session, keyspace, coin, since_ms, now_ms):
            if row["written_ms"] is not None and row["ingest_time_ms"] is not None:
                latencies.append(row["written_ms"] - row["ingest_time_ms"])
    return latencies[-LATENCY_SAMPLE:]


def spark_batches(checkpoint: Path, last: int = SPARK_BATCHES) -> dict[str, Any]:
    """Durations (s) of the last batches of one query: commits/N time minus offsets/N time."""
    offsets, commits = checkpoint / "offsets", checkpoint / "commits"
    if not commits.is_dir():
        return {"batches": 0, "duration_s": percentiles([]), "last_commit_age_s": None}
    done = sorted(int(path.name) for path in commits.iterdir() if path.name.isdigit())
    durations = []
    for batch in done[-last:]:
        started = offsets / str(batch)
        if started.exists():
            durations.append((commits / str(batch)).stat().st_mtime - started.stat().st_mtime)
    last_commit = (commits / str(done[-1])).stat().st_mtime if done else None
    return {
        "batches": len(done),
        "duration_s": percentiles(durations, digits=3),
        "last_commit_age_s": round(time.time() - last_commit, 1) if last_commit else None,
    }


def spark_throughput(settings: Settings) -> dict[str, Any]:
    from crypto_platform.spark.job import CHECKPOINT, QUERY, checkpoint_dir  # imports pyspark

    root = checkpoint_dir(settings)
    return {"checkpoint": str(root), QUERY: spark_batches(root / CHECKPOINT)}


def throughput_report(stores: Stores, latency_window_s: int = 600) -> dict[str, Any]:
    """The throughput report as a JSON-able dict (the asset's metadata comes from it)."""
    settings = stores.settings
    now_ms = int(time.time() * 1000)
    since_ms = now_ms - latency_window_s * 1000
    coins = sorted(
        set(cassandra_queries.symbols(stores.cassandra(), settings.cassandra_keyspace))
        | set(settings.symbols)
    )
    kafka = stores.kafka()
    return {
        "taken_at": now_ms / 1000,
        "ticks": {
            "kafka": kafka_throughput(stores, now_ms),
            "mongodb": mongodb_throughput(stores, now_ms),
            "cassandra": cassandra_throughput(stores, now_ms, coins),
        },
        "latency_ms": {
            "window_s": latency_window_s,
            "ingest_to_mongodb_handover": percentiles(
                mongo_queries.handover_latencies_ms(stores.prices, since_ms, LATENCY_SAMPLE)
            ),
            "mongodb_time": MONGODB_TIME,
            "ingest_to_cassandra": percentiles(
                cassandra_latencies_ms(stores, coins, since_ms, now_ms)
            ),
        },
        "consumer_lag": consumer_lag(kafka, settings),
        "dead_letters": topic_size(kafka, settings.kafka_dlq_topic),
        "spark": spark_throughput(settings),
    }
