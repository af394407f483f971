"""The aggregation job: one streaming query over the Kafka topic, run until stopped.

One read of each tick feeds all the tables: the stateful processor passes every tick on
(prices_by_symbol, latest_prices) and emits the windows it changed (aggregates_by_symbol,
latest_aggregates) and the candles (candles), and one foreachBatch pass writes them all.
Offsets and window state live in the query's checkpoint, so a restart resumes exactly where
it committed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from pyspark.errors import StreamingQueryException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.streaming import StreamingQuery

from crypto_platform.candles import INTERVALS
from crypto_platform.errors import PlatformError
from crypto_platform.settings import Settings
from crypto_platform.spark.cassandra_writer import CassandraTarget, close_sessions, write_batch
from crypto_platform.spark.kafka_source import SOURCE_NAME
from crypto_platform.spark.transforms import QUALITY_METRICS, parse_ticks, ticks_and_windows
from crypto_platform.streaming.kafka_options import spark_kafka_options
from crypto_platform.streaming.progress import Snapshot

log = logging.getLogger(__name__)

QUERY = "ticks"
# The query's checkpoint folder. Its state is keyed by source and bucket of coins; a
# checkpoint of an earlier release (keyed by coin and source, `ticks-by-source`, or by coin
# alone, `ticks`) cannot be resumed, so this one starts anew from
# `CRYPTO_SPARK_STARTING_OFFSETS` and the repair recomputes the history.
CHECKPOINT = f"{QUERY}-by-bucket"
BATCH_HISTORY = 10_000  # a bench's longest run keeps them all (about 600 at 1 batch/s)
POLL_S = 0.5  # how often a running query's progress is collected and `stop` checked


class AggregationFailed(PlatformError):
    """A streaming query stopped with an error (its checkpoint is intact: restart resumes)."""


@dataclass
class QueryTotals:
    """What the query did, summed over its progress reports and its batches' writes."""

    batches: int = 0
    input_rows: int = 0
    invalid_rows: int = 0
    dropped_late_rows: int = 0
    ticks_written: int = 0
    windows_written: int = 0
    candles_written: int = 0
    # The last BATCH_HISTORY batches' `durationMs` (triggerExecution and its phases:
    # latestOffset, queryPlanning, addBatch, walCommit, commitOffsets, ...), so a caller sees
    # where the time of a batch goes, not only how long it took; bounded, as a continuous
    # run lasts for days.
    batch_durations_ms: deque[dict[str, int]] = field(
        default_factory=lambda: deque(maxlen=BATCH_HISTORY)
    )
    last_batch_id: int = -1

    def add(self, progress: dict[str, Any]) -> None:
        # Batch ids only grow, and recentProgress lists them in order: one number is the
        # whole memory of what was counted.
        if progress["batchId"] <= self.last_batch_id:
            return
        self.last_batch_id = progress["batchId"]
        self.batches += 1
        self.input_rows += progress.get("numInputRows", 0)
        if progress.get("numInputRows", 0):  # an empty trigger says nothing of batch time
            self.batch_durations_ms.append(dict(progress["durationMs"]))
        observed = (progress.get("observedMetrics") or {}).get(QUALITY_METRICS)
        self.invalid_rows += int(observed["invalid_rows"] or 0) if observed else 0
        for operator in progress.get("stateOperators", []):
            self.dropped_late_rows += operator.get("numRowsDroppedByWatermark", 0)

    def wrote(self, ticks: int, windows: int, candles: int) -> None:
        self.ticks_written += ticks
        self.windows_written += windows
        self.candles_written += candles


def checkpoint_dir(settings: Settings) -> Path:
    """One checkpoint per topic and keyspace: offsets of one topic mean nothing for another."""
    return settings.checkpoint_root / f"{settings.kafka_topic}--{settings.cassandra_keyspace}"


def read_ticks(spark: SparkSession, settings: Settings) -> DataFrame:
    reader = (
        spark.readStream.format(SOURCE_NAME)
        .option("subscribe", settings.kafka_topic)
        .options(**spark_kafka_options(settings))
        .option("startingOffsets", settings.spark_starting_offsets)
        .option("failOnDataLoss", str(settings.spark_fail_on_data_loss).lower())
        # As many read tasks as cores, even when the topic has fewer partitions with data.
        .option("minPartitions", str(spark.sparkContext.defaultParallelism))
    )
    if settings.spark_max_offsets_per_trigger:
        reader = reader.option("maxOffsetsPerTrigger", str(settings.spark_max_offsets_per_trigger))
    return parse_ticks(reader.load())


def _write(target: CassandraTarget, totals: QueryTotals, batch: DataFrame, _batch_id: int) -> None:
    """foreachBatch: one pass over the batch's ticks and windows (so nothing to cache)."""
    totals.wrote(*write_batch(batch, target))


def start_query(
    spark: SparkSession, settings: Settings, totals: QueryTotals, *, available_now: bool
) -> StreamingQuery:
    """Start the query; `available_now` catches up with what is in Kafka, then stops."""
    rows = ticks_and_windows(
        read_ticks(spark, settings),
        window_s=settings.aggregate_window_s,
        slide_s=settings.aggregate_slide_s,
        watermark_s=settings.aggregate_watermark_s,
        candle_intervals_ms=[INTERVALS[name] for name in settings.candle_intervals],
    )
    writer = (
        rows.writeStream.queryName(f"{settings.kafka_topic}-{QUERY}")
        .outputMode("update")
        .option("checkpointLocation", str(checkpoint_dir(settings) / CHECKPOINT))
        .foreachBatch(partial(_write, CassandraTarget.from_settings(settings), totals))
    )
    if available_now:
        writer = writer.trigger(availableNow=True)
    elif settings.spark_trigger_interval_s:
        writer = writer.trigger(processingTime=f"{settings.spark_trigger_interval_s} seconds")
    return writer.start()


def run_aggregation(
    spark: SparkSession,
    settings: Settings,
    stop: threading.Event,
    *,
    available_now: bool = False,
    report: Callable[[Snapshot], None] | None = None,
    report_every: float = 10.0,
) -> QueryTotals:
    """Run the query until `stop` (or, available-now, until caught up); return totals."""
    totals = QueryTotals()
    query = start_query(spark, settings, totals, available_now=available_now)
    last_report = time.monotonic()
    try:
        while not stop.is_set() and query.isActive:
            # Returns as soon as the query ends (available-now: caught up), not a poll later.
            with contextlib.suppress(StreamingQueryException):  # raised below, summarised
                query.awaitTermination(POLL_S)  # type: ignore[arg-type]  # takes float s
            _collect(query, totals)
            _raise_if_failed(query)
            if report is not None and time.monotonic() - last_report >= report_every:
                report(snapshot(query, totals))
                last_report = time.monotonic()
    finally:
        if query.isActive:
            query.stop()
        close_sessions()
    _collect(query, totals)
    _raise_if_failed(query)
    if report is not None:
        report(snapshot(query, totals))
    return totals


def _collect(query: StreamingQuery, totals: QueryTotals) -> None:
    for progress in query.recentProgress:
        totals.add(progress)


def _raise_if_failed(query: StreamingQuery) -> None:
    error = query.exception()
    if error is not None:
        raise AggregationFailed(f"Spark query {query.name} failed: {_summary(error)}")


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


def snapshot(query: StreamingQuery, totals: QueryTotals) -> Snapshot:
    """Counts and the latest progress of the query, flat, for logs and metadata."""
    progress: dict[str, Any] = query.lastProgress or {}
    values: dict[str, float | int] = {
        "rows": totals.input_rows,
        "invalid_rows": totals.invalid_rows,
        "dropped_late_rows": totals.dropped_late_rows,
        "ticks_written": totals.ticks_written,
        "windows_written": totals.windows_written,
        "candles_written": totals.candles_written,
        "batches": totals.batches,
        "input_rows_per_s": round(progress.get("inputRowsPerSecond") or 0.0, 1),
        "processed_rows_per_s": round(progress.get("processedRowsPerSecond") or 0.0, 1),
        "batch_s": (progress.get("durationMs") or {}).get("triggerExecution", 0) / 1000,
        "state_rows": sum(op.get("numRowsTotal", 0) for op in progress.get("stateOperators", [])),
    }
    watermark = (progress.get("eventTime") or {}).get("watermark")
    if watermark:
        moment = dt.datetime.fromisoformat(watermark.replace("Z", "+00:00"))
        values["watermark_epoch_s"] = int(moment.timestamp())
    return values
