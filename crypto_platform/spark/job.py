"""The aggregation job: two streaming queries over one Kafka source, run until stopped.

`prices` writes raw ticks to prices_by_symbol and latest_prices; `aggregates` writes the
windowed means to aggregates_by_symbol and latest_aggregates. (A stateful aggregation's
foreachBatch sees only its aggregates, so the raw prices need their own query.) Each
query has its own checkpoint, so a restart resumes exactly where it committed.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from pyspark.errors import StreamingQueryException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.streaming import StreamingQuery

from crypto_platform.errors import PlatformError
from crypto_platform.settings import Settings
from crypto_platform.spark.cassandra_writer import (
    CassandraTarget,
    close_sessions,
    write_aggregates,
    write_prices,
)
from crypto_platform.spark.kafka_source import SOURCE_NAME
from crypto_platform.spark.transforms import QUALITY_METRICS, parse_ticks, windowed_means
from crypto_platform.streaming.kafka_options import spark_kafka_options
from crypto_platform.streaming.progress import Snapshot

log = logging.getLogger(__name__)

QUERIES = ("prices", "aggregates")


class AggregationFailed(PlatformError):
    """A streaming query stopped with an error (its checkpoint is intact: restart resumes)."""


@dataclass
class QueryTotals:
    """What the queries did, summed over their progress reports."""

    batches: dict[str, int] = field(default_factory=lambda: dict.fromkeys(QUERIES, 0))
    input_rows: dict[str, int] = field(default_factory=lambda: dict.fromkeys(QUERIES, 0))
    invalid_rows: int = 0
    dropped_late_rows: int = 0
    # Each batch's `durationMs` (triggerExecution and its phases: latestOffset,
    # queryPlanning, addBatch, walCommit, commitOffsets, ...), so a caller sees where the
    # time of a batch goes, not only how long it took.
    batch_durations_ms: dict[str, list[dict[str, int]]] = field(
        default_factory=lambda: {name: [] for name in QUERIES}
    )
    _seen: set[tuple[str, int]] = field(default_factory=set)

    def add(self, name: str, progress: dict[str, Any]) -> None:
        key = (name, progress["batchId"])
        if key in self._seen:
            return
        self._seen.add(key)
        self.batches[name] += 1
        self.input_rows[name] += progress.get("numInputRows", 0)
        if progress.get("numInputRows", 0):  # an empty trigger says nothing of batch time
            self.batch_durations_ms[name].append(dict(progress["durationMs"]))
        if name == "prices":
            observed = (progress.get("observedMetrics") or {}).get(QUALITY_METRICS)
            self.invalid_rows += int(observed["invalid_rows"] or 0) if observed else 0
        for operator in progress.get("stateOperators", []):
            self.dropped_late_rows += operator.get("numRowsDroppedByWatermark", 0)


def checkpoint_dir(settings: Settings) -> Path:
    """One checkpoint per topic and keyspace: offsets of one topic mean nothing for another."""
    return settings.checkpoint_root / f"{settings.kafka_topic}--{settings.cassandra_keyspace}"


def read_ticks(spark: SparkSession, settings: Settings) -> DataFrame:
    reader = (
        spark.readStream.format(SOURCE_NAME)
        .option("subscribe", settings.kafka_topic)
        .options(**spark_kafka_options(settings))
        .option("startingOffsets", settings.spark_starting_offsets)
    )
    if settings.spark_max_offsets_per_trigger:
        reader = reader.option("maxOffsetsPerTrigger", str(settings.spark_max_offsets_per_trigger))
    return parse_ticks(reader.load())


def _write_batch(
    write: Callable[[DataFrame, CassandraTarget], None],
    target: CassandraTarget,
    batch: DataFrame,
    _batch_id: int,
) -> None:
    """foreachBatch: each writer makes one pass over its batch (so nothing to cache)."""
    write(batch, target)


def start_queries(
    spark: SparkSession, settings: Settings, *, available_now: bool
) -> dict[str, StreamingQuery]:
    """Start both queries; `available_now` catches up with what is in Kafka, then stops."""
    target = CassandraTarget.from_settings(settings)
    # Each query gets a source of its own: sharing one plan between two concurrently
    # running queries broke task deserialisation (OptionalDataException) here.
    ticks = read_ticks(spark, settings)
    aggregates = windowed_means(
        read_ticks(spark, settings),
        window_s=settings.aggregate_window_s,
        slide_s=settings.aggregate_slide_s,
        watermark_s=settings.aggregate_watermark_s,
    )
    plans = {
        "prices": (ticks, "append", write_prices),
        "aggregates": (aggregates, "update", write_aggregates),
    }
    queries = {}
    for name, (frame, mode, write) in plans.items():
        writer = (
            frame.writeStream.queryName(f"{settings.kafka_topic}-{name}")
            .outputMode(mode)
            .option("checkpointLocation", str(checkpoint_dir(settings) / name))
            .foreachBatch(partial(_write_batch, write, target))
        )
        if available_now:
            writer = writer.trigger(availableNow=True)
        elif settings.spark_trigger_interval_s:
            writer = writer.trigger(processingTime=f"{settings.spark_trigger_interval_s} seconds")
        queries[name] = writer.start()
    return queries


def run_aggregation(
    spark: SparkSession,
    settings: Settings,
    stop: threading.Event,
    *,
    available_now: bool = False,
    report: Callable[[Snapshot], None] | None = None,
    report_every: float = 10.0,
) -> QueryTotals:
    """Run both queries until `stop` (or, available-now, until caught up); return totals."""
    queries = start_queries(spark, settings, available_now=available_now)
    totals = QueryTotals()
    last_report = time.monotonic()
    try:
        while not stop.is_set() and any(query.isActive for query in queries.values()):
            stop.wait(0.5)
            _collect(queries, totals)
            _raise_if_failed(queries)
            if report is not None and time.monotonic() - last_report >= report_every:
                report(snapshot(queries, totals))
                last_report = time.monotonic()
    finally:
        for query in queries.values():
            if query.isActive:
                query.stop()
        close_sessions()
    _collect(queries, totals)
    _raise_if_failed(queries)
    if report is not None:
        report(snapshot(queries, totals))
    return totals


def _collect(queries: dict[str, StreamingQuery], totals: QueryTotals) -> None:
    for name, query in queries.items():
        for progress in query.recentProgress:
            totals.add(name, progress)


def _raise_if_failed(queries: dict[str, StreamingQuery]) -> None:
    for name, query in queries.items():
        error = query.exception()
        if error is None:
            continue
        for other in queries.values():
            if other.isActive:
                other.stop()
        raise AggregationFailed(f"Spark query {name} failed: {_summary(error)}")


def _summary(error: StreamingQueryException) -> str:
    text = str(error)
    for hint, meaning in (
        ("NoHostAvailable", "Cassandra is not reachable"),
        ("KafkaTimeoutError", "Kafka is not reachable"),
        ("NoBrokersAvailable", "Kafka is not reachable"),
    ):
        if hint in text:
            first_line = next((line for line in text.splitlines() if hint in line), hint)
            detail = first_line.strip()[:300]
            return f"{meaning} ({detail}); the checkpoint is intact: a restart resumes"
    return text.splitlines()[0][:500] if text else repr(error)


def snapshot(queries: dict[str, StreamingQuery], totals: QueryTotals) -> Snapshot:
    """Counts and the latest progress of both queries, flat, for logs and metadata."""
    values: dict[str, float | int] = {
        "rows": totals.input_rows["prices"],
        "invalid_rows": totals.invalid_rows,
        "dropped_late_rows": totals.dropped_late_rows,
    }
    for name, query in queries.items():
        progress: dict[str, Any] = query.lastProgress or {}
        values[f"{name}_batches"] = totals.batches[name]
        values[f"{name}_input_rows_per_s"] = round(progress.get("inputRowsPerSecond") or 0.0, 1)
        values[f"{name}_processed_rows_per_s"] = round(
            progress.get("processedRowsPerSecond") or 0.0, 1
        )
        values[f"{name}_batch_s"] = (progress.get("durationMs") or {}).get(
            "triggerExecution", 0
        ) / 1000
    aggregates: dict[str, Any] = queries["aggregates"].lastProgress or {}
    watermark = (aggregates.get("eventTime") or {}).get("watermark")
    state_rows = sum(op.get("numRowsTotal", 0) for op in aggregates.get("stateOperators", []))
    values["state_rows"] = state_rows
    if watermark:
        moment = dt.datetime.fromisoformat(watermark.replace("Z", "+00:00"))
        values["watermark_epoch_s"] = int(moment.timestamp())
    return values
