"""Spark: available-now catch-up throughput, and micro-batch durations at a steady rate."""

from __future__ import annotations

import threading
import time

from pyspark.sql import SparkSession

from crypto_platform.bench.fixtures import fresh, median, percentile, prefill, simulated_ticks
from crypto_platform.settings import Settings
from crypto_platform.sources.simulated import SimulatedSource
from crypto_platform.spark.job import QUERIES, run_aggregation
from crypto_platform.streaming.producer import TickProducer, run_producer
from crypto_platform.streaming.progress import Progress


def warm_up(spark: SparkSession, settings: Settings, symbol_list: list[str]) -> None:
    """One small catch-up, so JVM start-up and code generation are not measured."""
    isolated = fresh(settings, "spark_warmup")
    prefill(isolated, simulated_ticks(2_000, symbol_list, seed=1))
    run_aggregation(spark, isolated, threading.Event(), available_now=True)


def catch_up_throughput(
    spark: SparkSession, settings: Settings, count: int, symbol_list: list[str]
) -> dict:
    """Rows per second of an available-now run over `count` ticks already in Kafka."""
    isolated = fresh(settings, "spark_catchup")
    prefill(isolated, simulated_ticks(count, symbol_list))
    started = time.perf_counter()
    totals = run_aggregation(spark, isolated, threading.Event(), available_now=True)
    elapsed = time.perf_counter() - started
    assert totals.input_rows["prices"] == count, totals.input_rows
    return {"ticks": count, "seconds": round(elapsed, 2), "rows_per_s": round(count / elapsed)}


def micro_batches(
    spark: SparkSession, settings: Settings, rate: float, seconds: float, symbol_list: list[str]
) -> dict:
    """Batch durations of both continuous queries while ticks arrive at `rate` per second."""
    isolated = fresh(settings, "spark_microbatch").model_copy(
        update={"spark_trigger_interval_s": 1.0, "spark_starting_offsets": "latest"}
    )
    stop = threading.Event()
    outcome: dict = {}
    spark_thread = threading.Thread(
        target=lambda: outcome.update(totals=run_aggregation(spark, isolated, stop)),
    )
    spark_thread.start()
    time.sleep(3)  # the queries start (and settle their first, empty batch)
    producer = TickProducer(isolated)
    source = SimulatedSource(symbol_list, rate=rate)
    run_producer(
        source, producer, threading.Event(), duration=seconds, progress=Progress("bench", every=1e9)
    )
    producer.close()
    time.sleep(2)
    stop.set()
    spark_thread.join()
    totals = outcome["totals"]
    result: dict = {"rate": rate, "seconds": seconds}
    for name in QUERIES:
        durations = totals.batch_durations_s[name][1:]  # the first batch pays for planning
        result[name] = {
            "batches": len(durations),
            "p50_s": round(median(durations), 3),
            "p99_s": round(percentile(durations, 0.99), 3),
        }
    result["p50_s"] = max(result[name]["p50_s"] for name in QUERIES)
    result["p99_s"] = max(result[name]["p99_s"] for name in QUERIES)
    return result
