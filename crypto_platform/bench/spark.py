"""Spark: available-now catch-up throughput, and micro-batch durations at a steady rate.

Both report where each batch's time goes: the median of every `durationMs` phase of the
query's batches (latestOffset, queryPlanning, addBatch, walCommit, commitOffsets,
and triggerExecution, their whole).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from typing import Any

from pyspark.sql import SparkSession

from crypto_platform.bench.bare_catchup import bare_catch_up
from crypto_platform.bench.fixtures import (
    fresh,
    median,
    percentile,
    prefill,
    simulated_stream,
)
from crypto_platform.bench.write_times import wait_for_rows, write_latencies_ms
from crypto_platform.candles import INTERVAL_NAMES
from crypto_platform.settings import Settings
from crypto_platform.sources.simulated import SimulatedSource
from crypto_platform.spark.job import QueryTotals, run_aggregation
from crypto_platform.streaming.producer import TickProducer, run_producer
from crypto_platform.streaming.progress import Progress

PHASES = (
    "latestOffset", "queryPlanning", "addBatch", "walCommit", "commitOffsets", "triggerExecution",
)  # fmt: skip
TRIGGER_S = 1.0  # the micro-batch run's trigger interval


def warm_up(spark: SparkSession, settings: Settings, symbol_list: list[str]) -> None:
    """One small catch-up, so JVM start-up and code generation are not measured."""
    isolated = fresh(settings, "spark_warmup")
    prefill(isolated, simulated_stream(2_000, symbol_list, seed=1))
    run_aggregation(spark, isolated, threading.Event(), available_now=True)


def _prefilled(settings: Settings, count: int, symbol_list: list[str]) -> tuple[Settings, float]:
    isolated = fresh(settings, "spark_catchup")
    started = time.perf_counter()
    prefill(isolated, simulated_stream(count, symbol_list))
    return isolated, time.perf_counter() - started


def _catch_up(spark: SparkSession, isolated: Settings, count: int) -> dict[str, Any]:
    started = time.perf_counter()
    totals = run_aggregation(spark, isolated, threading.Event(), available_now=True)
    elapsed = time.perf_counter() - started
    assert totals.input_rows == count, totals.input_rows
    return {
        "ticks": count,
        "seconds": round(elapsed, 2),
        "rows_per_s": round(count / elapsed),
        "batches": len(totals.batch_durations_ms),
        "duration_ms_p50": phase_medians(totals.batch_durations_ms),
    }


def catch_up_throughput(
    spark: SparkSession, settings: Settings, count: int, symbol_list: list[str]
) -> dict[str, Any]:
    """Rows per second of an available-now run over `count` ticks already in Kafka."""
    isolated, _ = _prefilled(settings, count, symbol_list)
    return _catch_up(spark, isolated, count)


def catch_up_beside_bare(
    spark: SparkSession, settings: Settings, count: int, symbol_list: list[str]
) -> dict[str, Any]:
    """The catch-up and, first, the bare clients over the same `count` ticks in Kafka.

    `ratio` is ours over the bare path's rows per second (read and write together).
    """
    isolated, prefill_s = _prefilled(settings, count, symbol_list)
    bare = bare_catch_up(isolated, count)
    ours = _catch_up(spark, isolated, count)
    return {
        **ours,
        "prefill_s": round(prefill_s, 2),
        "bare": bare,
        "ratio": round(ours["rows_per_s"] / bare["combined_per_s"], 3),
    }


def candles_extra_cost(
    spark: SparkSession, settings: Settings, count: int, symbol_list: list[str], rounds: int = 2
) -> dict[str, Any]:
    """The one pass's catch-up with candles over without, over the same ticks in Kafka.

    Each run writes a keyspace and checkpoint of its own; the two alternate, `rounds` times
    each, in turn first, and the best of each counts (so neither pays the other's warm-up
    alone). 1.0: candles cost nothing.
    """
    ticks, _ = _prefilled(settings, count, symbol_list)
    best: dict[str, int] = {}
    runs: list[tuple[str, list[str]]] = [("without", []), ("with", list(INTERVAL_NAMES))]
    for round_ in range(rounds):
        for label, intervals in runs if round_ % 2 == 0 else runs[::-1]:
            own = fresh(settings, f"candles_{label}").model_copy(
                update={"kafka_topic": ticks.kafka_topic, "candle_intervals": intervals}
            )
            rows_per_s = _catch_up(spark, own, count)["rows_per_s"]
            best[label] = max(best.get(label, 0), rows_per_s)
    return {
        "ticks": count,
        "symbols": len(symbol_list),
        "rounds": rounds,
        "with_rows_per_s": best["with"],
        "without_rows_per_s": best["without"],
        "ratio": round(best["with"] / best["without"], 3),
    }


def phase_medians(batches: Iterable[dict[str, int]]) -> dict[str, float]:
    """Per `durationMs` phase, its median (ms) over `batches`."""
    return {phase: median([batch.get(phase, 0) for batch in batches]) for phase in PHASES}


def micro_batches(
    spark: SparkSession, settings: Settings, rate: float, seconds: float, symbol_list: list[str]
) -> dict[str, Any]:
    """Batch durations of the continuous query while ticks arrive at `rate` per second.

    And how long each tick took from its ingest to its write into prices_by_symbol.
    """
    isolated = fresh(settings, "spark_microbatch").model_copy(
        update={"spark_trigger_interval_s": TRIGGER_S, "spark_starting_offsets": "latest"}
    )
    stop = threading.Event()
    outcome: dict[str, QueryTotals] = {}
    spark_thread = threading.Thread(
        target=lambda: outcome.update(totals=run_aggregation(spark, isolated, stop)),
    )
    spark_thread.start()
    time.sleep(3)  # the query starts (and settles its first, empty batch)
    producer = TickProducer(isolated)
    source = SimulatedSource(symbol_list, rate=rate)
    run_producer(
        source, producer, threading.Event(), duration=seconds, progress=Progress("bench", every=1e9)
    )
    sent = producer.stats.sent
    producer.close()
    wait_for_rows(isolated, sent, timeout_s=60)  # so the last ticks count too
    stop.set()
    spark_thread.join()
    totals = outcome["totals"]
    batches = list(totals.batch_durations_ms)[1:]  # the first batch pays for planning
    durations = [batch["triggerExecution"] / 1000 for batch in batches]
    result: dict[str, Any] = {
        "rate": rate,
        "seconds": seconds,
        "trigger_s": TRIGGER_S,
        "batches": len(durations),
        "p50_s": round(median(durations), 3),
        "p99_s": round(percentile(durations, 0.99), 3),
        "duration_ms_p50": phase_medians(batches),
    }
    latencies = write_latencies_ms(isolated)
    result["cassandra_latency"] = {
        "sent": sent,
        "rows": len(latencies),
        "p50_ms": round(percentile(latencies, 0.50), 1),
        "p95_ms": round(percentile(latencies, 0.95), 1),
        "p99_ms": round(percentile(latencies, 0.99), 1),
    }
    return result
