"""From parsed Kafka records to valid ticks, and from ticks to windowed means (DataFrame code).

No tick rule lives here: the Kafka source parses every record with the one tick
definition (`crypto_platform.ticks`) and hands over typed columns and `invalid_reason`,
so Spark keeps and refuses exactly what the MongoDB sink stores and dead-letters.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from crypto_platform.spark.kafka_source import TICK_FIELDS

QUALITY_METRICS = "tick_quality"


def parse_ticks(records: DataFrame) -> DataFrame:
    """Valid ticks with `event_time` and `ingest_time` timestamps; invalid rows counted, left out.

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
        .withColumn("ingest_time", F.timestamp_millis("ingest_time_ms"))
    )


def windowed_means(ticks: DataFrame, *, window_s: int, slide_s: int, watermark_s: int) -> DataFrame:
    """Per symbol and sliding window: the three means, count, min, max, first and last price.

    A tick seen twice (a replay, a resend) is counted once: duplicates by identity are
    dropped within the watermark. Ticks later than the watermark are dropped by Spark and
    counted in the progress (numRowsDroppedByWatermark).
    """
    price = F.col("price")
    return (
        ticks.withWatermark("event_time", f"{watermark_s} seconds")
        .dropDuplicatesWithinWatermark(["source", "symbol", "event_time_ms"])
        .groupBy(F.window("event_time", f"{window_s} seconds", f"{slide_s} seconds"), "symbol")
        .agg(
            F.avg(price).alias("arithmetic_mean"),
            F.exp(F.avg(F.log(price))).alias("geometric_mean"),
            (F.count(price) / F.sum(1.0 / price)).alias("harmonic_mean"),
            F.count(price).alias("tick_count"),
            F.min(price).alias("min_price"),
            F.max(price).alias("max_price"),
            F.min_by(price, "event_time").alias("first_price"),
            F.max_by(price, "event_time").alias("last_price"),
            F.max("event_time").alias("last_event_time"),
        )
        .select(
            "symbol",
            F.col("window.start").alias("window_start"),
            F.col("window.end").alias("window_end"),
            "arithmetic_mean",
            "geometric_mean",
            "harmonic_mean",
            "tick_count",
            "min_price",
            "max_price",
            "first_price",
            "last_price",
            "last_event_time",
        )
    )
