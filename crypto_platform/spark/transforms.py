"""From Kafka records to valid ticks, and from ticks to windowed means (pure DataFrame code)."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, IntegerType, LongType, StringType, StructField, StructType

from crypto_platform.ticks import SOURCES

QUALITY_METRICS = "tick_quality"

TICK_SCHEMA = StructType(
    [
        StructField("schema_version", IntegerType()),
        StructField("source", StringType()),
        StructField("symbol", StringType()),
        StructField("price", DoubleType()),
        StructField("event_time_ms", LongType()),
        StructField("ingest_time_ms", LongType()),
        StructField("quote", StringType()),
        StructField("name", StringType()),
        StructField("market_cap", DoubleType()),
        StructField("volume_24h", DoubleType()),
        StructField("change_24h_pct", DoubleType()),
        StructField("number_of_markets", LongType()),
        StructField("total_supply", DoubleType()),
        StructField("uuid", StringType()),
    ]
)


def _is_valid(t: Column) -> Column:
    """The tick model's rules (crypto_platform.ticks), as a Spark predicate."""
    return (
        (t["schema_version"] == 1)
        & t["source"].isin(*SOURCES)
        & t["symbol"].rlike(r"^[A-Z0-9]{1,20}$")
        & (t["price"] > 0)
        & ~F.isnan(t["price"])
        & (t["price"] < float("inf"))
        & (t["event_time_ms"] > 0)
        & (t["ingest_time_ms"] > 0)
    )


def parse_ticks(records: DataFrame) -> DataFrame:
    """Valid ticks with an `event_time` timestamp; invalid rows are counted, then left out.

    The counts travel in the query progress as observed metrics `tick_quality`
    (`rows`, `invalid_rows`).
    """
    parsed = records.select(F.from_json(F.col("value").cast("string"), TICK_SCHEMA).alias("t"))
    valid = F.coalesce(_is_valid(F.col("t")), F.lit(False))
    observed = parsed.observe(
        QUALITY_METRICS,
        F.count(F.lit(1)).alias("rows"),
        F.sum(F.when(valid, 0).otherwise(1)).alias("invalid_rows"),
    )
    return (
        observed.where(valid)
        .select("t.*")
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
