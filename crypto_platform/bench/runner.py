"""Run every measurement, in the sizes of a quick or a full run, and collect the results."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

from crypto_platform.bench import spark as spark_bench
from crypto_platform.bench import streaming
from crypto_platform.bench.fixtures import drop_topics, fresh, measured_stack, symbols
from crypto_platform.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sizes:
    """How much each measurement moves."""

    producer_ticks: int
    sink_ticks: int
    latency_seconds: float
    spark_ticks: int
    microbatch_seconds: float
    scaling_ticks: int
    scaling_symbols: tuple[int, ...] = (3, 100, 1000)
    api_seconds: float = 20.0
    repair_ticks: int = 300_000
    outage_s: float = 180.0  # the producer outage the automation's gap repair is timed after


QUICK = Sizes(
    30_000, 30_000, 10, 100_000, 20, 10_000, api_seconds=8.0, repair_ticks=30_000, outage_s=30.0
)
# The full catch-up reads 300,000 ticks, not 1,000,000: the local Kafka stand-in (noida-db
# 0.2.3) serves a 300,000-message topic to a bare kafka-python consumer at ~114,000/s, but
# did not hand out the first 200,000 of a 1,000,000-message one within 15 minutes.
FULL = Sizes(200_000, 200_000, 30, 300_000, 60, 50_000)

Part = Literal["spark", "api", "repair", "candles"]


def run_benchmark(
    settings: Settings,
    *,
    quick: bool,
    own_stack: bool,
    only: Part | None = None,
    say: Callable[[str], None] = log.info,
) -> dict[str, Any]:
    """Every measurement (or one part's alone); on a stack of its own or the given one."""
    with measured_stack(settings, own_stack=own_stack, say=say) as measured:
        return _measure(measured, QUICK if quick else FULL, only, say)


def _measure(
    settings: Settings, sizes: Sizes, only: Part | None, say: Callable[[str], None]
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    if only is None:
        results |= _measure_pipeline(settings, sizes, say)
    if only in (None, "spark"):
        results |= _measure_spark(settings, sizes, say, pipeline_scaling=only is None)
    if only in (None, "api"):
        results |= _measure_api(settings, sizes, say)
    if only in (None, "repair"):
        results |= _measure_repair(settings, sizes, say)
    if only in (None, "candles"):
        results |= _measure_candles(settings, sizes, say)
    return results


def _measure_pipeline(
    settings: Settings, sizes: Sizes, say: Callable[[str], None]
) -> dict[str, Any]:
    three = symbols(3)
    step = partial(_step, say, settings)
    return {
        "producer": step(
            f"producer, {sizes.producer_ticks:,} ticks beside a bare send loop",
            lambda: streaming.producer_throughput(settings, sizes.producer_ticks, three),
        ),
        "sink": step(
            f"MongoDB sink, {sizes.sink_ticks:,} ticks beside a bare consume and insert_many",
            lambda: streaming.sink_throughput(settings, sizes.sink_ticks, three),
        ),
        "latency": {
            str(rate): step(
                f"latency at {rate}/s for {sizes.latency_seconds:.0f} s",
                partial(streaming.end_to_end_latency, settings, rate, sizes.latency_seconds, three),
            )
            for rate in (100, 1000)
        },
    }


def _measure_spark(
    settings: Settings, sizes: Sizes, say: Callable[[str], None], *, pipeline_scaling: bool
) -> dict[str, Any]:
    """Spark's rows, and its catch-up per number of coins.

    The producer's and the sink's per number of coins too, when `pipeline_scaling`.
    """
    from crypto_platform.spark.session import spark_session

    three = symbols(3)
    step = partial(_step, say, settings)
    results: dict[str, Any] = {}
    spark = spark_session(settings.model_copy(update={"spark_master": "local[2]"}), "bench")
    try:
        step("Spark warm-up (2,000 ticks)", lambda: spark_bench.warm_up(spark, settings, three))
        results["spark"] = {
            "catch_up": step(
                f"Spark available-now catch-up, {sizes.spark_ticks:,} ticks, after a bare "
                "kafka-python read and cassandra-driver write of the same ticks",
                lambda: spark_bench.catch_up_beside_bare(spark, settings, sizes.spark_ticks, three),
            ),
            "micro_batches": step(
                f"Spark micro-batches at 1000 ticks/s for {sizes.microbatch_seconds:.0f} s",
                lambda: spark_bench.micro_batches(
                    spark, settings, 1000, sizes.microbatch_seconds, three
                ),
            ),
        }
        parts = "producer, sink and Spark catch-up" if pipeline_scaling else "Spark catch-up"
        results["scaling"] = [
            step(
                f"{count} symbols: {parts}, {sizes.scaling_ticks:,} ticks each",
                partial(_scaled, spark, settings, sizes, count, pipeline=pipeline_scaling),
            )
            for count in sizes.scaling_symbols
        ]
        results["spark"]["symbols_ratio"] = symbols_ratio(results["scaling"])
    finally:
        spark.stop()
    return results


def _measure_candles(
    settings: Settings, sizes: Sizes, say: Callable[[str], None]
) -> dict[str, Any]:
    """The one pass's catch-up with candles (1m, 5m, 1h, 1d) over without, 100 coins."""
    from crypto_platform.spark.session import spark_session

    count = sizes.spark_ticks // 2
    name = f"Spark catch-up with candles and without, {count:,} ticks of 100 coins, twice each"
    spark = spark_session(settings.model_copy(update={"spark_master": "local[2]"}), "bench")
    try:
        _step(say, settings, "Spark warm-up (2,000 ticks)",
              lambda: spark_bench.warm_up(spark, settings, symbols(3)))  # fmt: skip
        measured = partial(spark_bench.candles_extra_cost, spark, settings, count, symbols(100))
        return {"candles": _step(say, settings, name, measured)}
    finally:
        spark.stop()


def _measure_api(settings: Settings, sizes: Sizes, say: Callable[[str], None]) -> dict[str, Any]:
    from crypto_platform.bench.api import api_throughput_and_latency

    measured = partial(api_throughput_and_latency, settings, sizes.api_seconds)
    name = f"API and push, {sizes.api_seconds:.0f} s of load each"
    return {"api": _step(say, settings, name, measured)}


def _measure_repair(settings: Settings, sizes: Sizes, say: Callable[[str], None]) -> dict[str, Any]:
    from crypto_platform.bench.gap_repair import RATE, gap_repair_seconds
    from crypto_platform.bench.repair import repair_beside_bare

    name = (
        f"repair from MongoDB, {sizes.repair_ticks:,} ticks, beside a bare pymongo read "
        "and cassandra-driver write"
    )
    measured = partial(repair_beside_bare, settings, sizes.repair_ticks, symbols(3))
    results = {"repair": _step(say, settings, name, measured)}
    name = (
        f"gap repair by the automation after a {sizes.outage_s:.0f} s producer outage at "
        f"{RATE:.0f} ticks/s, under crypto-platform dev"
    )
    timed = partial(gap_repair_seconds, fresh(settings, "gap"), say, outage_s=sizes.outage_s)
    return results | {"gap_repair": _step(say, settings, name, timed)}


def _step(
    say: Callable[[str], None], settings: Settings, name: str, measure: Callable[[], Any]
) -> Any:
    """Run one measurement, then delete the topics it made (they would slow the next)."""
    say(f"running: {name}")
    started = time.monotonic()
    value = measure()
    drop_topics(settings)
    say(f"done ({time.monotonic() - started:.0f}s): {value}")
    return value


def _scaled(
    spark: Any, settings: Settings, sizes: Sizes, count: int, *, pipeline: bool
) -> dict[str, Any]:
    symbol_list = symbols(count)
    n = sizes.scaling_ticks
    row: dict[str, Any] = {"symbols": count}
    if pipeline:
        row["producer_per_s"] = streaming.producer_throughput(settings, n, symbol_list)[
            "ours_per_s"
        ]
        row["sink_per_s"] = streaming.sink_throughput(settings, n, symbol_list)["ours_per_s"]
    caught_up = spark_bench.catch_up_throughput(spark, settings, n, symbol_list)
    return row | {"spark_rows_per_s": caught_up["rows_per_s"]}


def symbols_ratio(rows: list[dict[str, Any]]) -> float:
    """Spark's catch-up with the most coins over with the fewest.

    1.0 is a cost per tick that does not grow with the coins.
    """
    by_count = {row["symbols"]: row["spark_rows_per_s"] for row in rows}
    return round(by_count[max(by_count)] / by_count[min(by_count)], 3)
