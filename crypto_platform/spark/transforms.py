"""From parsed Kafka records to valid ticks, and from ticks to ticks plus windowed means.

No tick rule lives here: the Kafka source parses every record with the one tick
definition (`crypto_platform.ticks`) and hands over typed columns and `invalid_reason`,
so Spark keeps and refuses exactly what the MongoDB sink stores and dead-letters.
"""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from crypto_platform.spark.kafka_source import TICK_FIELDS
from crypto_platform.spark.windowed_means import OUTPUT, WindowedMeans, state_bucket

QUALITY_METRICS = "tick_quality"


def parse_ticks(records: DataFrame) -> DataFrame:
    """Valid ticks with an `event_time` timestamp; invalid rows counted, left out.

    The counts travel in the query progress as observed metrics `tick_quality`
    (`rows`, `invalid_rows`); the same messages are in the dead-letter topic with the
    same reason, put there by the MongoDB sink.
    """
    invalid = F.col("invalid_reason").isNotNull()
    observed = records.observe(
        QUALITY_METRICS,
        F.count(F.lit(1)).alias("rows"),
        F.sum(F.when(invalid, 1).otherwise(0)).alias("invalid_rows"),
    )
    return (
        observed.where(~invalid)
        .select(*TICK_FIELDS)
        .withColumn("event_time", F.timestamp_millis("event_time_ms"))
    )


def ticks_and_windows(
    ticks: DataFrame,
    *,
    window_s: int,
    slide_s: int,
    watermark_s: int,
    candle_intervals_ms: Sequence[int] = (),
) -> DataFrame:
    """Every tick once, and each window and candle it changed, in one stream (`WindowedMeans`).

    A tick seen twice (a replay, a resend) is passed on and counted once. Ticks later than
    the watermark are dropped by Spark and counted in the progress
    (numRowsDroppedByWatermark); the MongoDB sink still stores them.
    """
    return (
        ticks.withWatermark("event_time", f"{watermark_s} seconds")
        .withColumn("bucket", state_bucket(F.col("symbol")))
        .groupBy("source", "bucket")
        .transformWithStateInPandas(
            statefulProcessor=WindowedMeans(window_s, slide_s, candle_intervals_ms),
            outputStructType=OUTPUT,
            outputMode="Update",
            timeMode="EventTime",
        )
    )
