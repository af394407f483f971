"""The Spark aggregation as assets: the Cassandra tables it writes.

`cassandra/aggregates_by_symbol` and `cassandra/latest_aggregates` hold the windowed
means; `cassandra/prices_by_symbol` and `cassandra/latest_prices` the raw ticks.

One multi-asset runs both streaming queries: continuous (until its run is terminated,
kept alive by streaming_supervisor) or available-now (catch up, then stop; scheduled when
continuous mode is off). The Spark driver runs inside the run's own process: a run is
already a process of its own, progress reaches Dagster directly, termination stops the
queries cleanly, and `CRYPTO_SPARK_MASTER=spark://...` makes the same process a client of
a cluster. (Dagster Pipes would add a second process and a message channel for nothing
that this needs.) Each run logs its Spark UI's address and links it (`spark_ui`) on every
event it records.
"""

import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import dagster as dg

from crypto_platform.defs.resources.clients import (
    CassandraResource,
    KafkaResource,
    SparkResource,
    settings_for,
)
from crypto_platform.defs.streams.assets import KAFKA_PRICES, OWNERS
from crypto_platform.defs.streams.freshness import stream_freshness
from crypto_platform.defs.streams.long_running import (
    STREAMING_TAGS,
    AssetProgress,
    run_until_terminated,
)
from crypto_platform.defs.streams.schemas import cassandra_table
from crypto_platform.streaming.progress import Snapshot

if TYPE_CHECKING:
    from crypto_platform.spark.job import QueryTotals

GROUP = "analytics"

CASSANDRA_AGGREGATES_BY_SYMBOL = dg.AssetKey(["cassandra", "aggregates_by_symbol"])
CASSANDRA_LATEST_AGGREGATES = dg.AssetKey(["cassandra", "latest_aggregates"])
CASSANDRA_PRICES_BY_SYMBOL = dg.AssetKey(["cassandra", "prices_by_symbol"])
CASSANDRA_LATEST_PRICES = dg.AssetKey(["cassandra", "latest_prices"])
CASSANDRA_CANDLES = dg.AssetKey(["cassandra", "candles"])


def _spark_table(key: dg.AssetKey, description: str) -> dg.AssetSpec:
    """A Cassandra table the Spark job writes from the tick topic."""
    return dg.AssetSpec(
        key,
        description=description,
        group_name=GROUP,
        kinds={"spark", "cassandra"},
        owners=OWNERS,
        deps=[KAFKA_PRICES],
        skippable=True,
        metadata=cassandra_table(key.path[-1]),
        freshness_policy=stream_freshness(),
    )


SPECS = [
    _spark_table(
        CASSANDRA_AGGREGATES_BY_SYMBOL,
        "Cassandra crypto.aggregates_by_symbol: per coin and sliding window, arithmetic, "
        "geometric and harmonic means, count, min, max, first and last price, by day.",
    ),
    _spark_table(
        CASSANDRA_LATEST_AGGREGATES,
        "Cassandra crypto.latest_aggregates: each coin's current window (what "
        "/latestAggregate serves).",
    ),
    _spark_table(
        CASSANDRA_PRICES_BY_SYMBOL,
        "Cassandra crypto.prices_by_symbol: a symbol's ticks by day, newest first.",
    ),
    _spark_table(
        CASSANDRA_LATEST_PRICES, "Cassandra crypto.latest_prices: the latest tick of each symbol."
    ),
    _spark_table(
        CASSANDRA_CANDLES,
        "Cassandra crypto.candles: open, high, low, close and tick count per coin and source "
        "at 1m, 5m, 1h and 1d (what /candles serves).",
    ),
]


class AggregationConfig(dg.Config):
    """Continuous (default) or available-now, and how often progress is recorded."""

    available_now: bool = False
    progress_every_s: float = 15.0
    record_every_s: float = 60.0


@dg.multi_asset(specs=SPECS, name="spark_aggregation", can_subset=False, pool="spark_aggregation")
def spark_aggregation(
    context: dg.AssetExecutionContext,
    config: AggregationConfig,
    kafka: KafkaResource,
    cassandra: CassandraResource,
    spark: SparkResource,
) -> Iterator[dg.MaterializeResult]:
    from crypto_platform.spark.job import run_aggregation
    from crypto_platform.spark.session import spark_session, ui_url

    settings = settings_for(kafka, cassandra, spark)
    mode = "available-now" if config.available_now else "continuous"
    context.log.info(f"starting Spark ({settings.spark_master}) in {mode} mode")
    session = spark_session(settings)
    # Every event of the run names its mode and links its Spark UI.
    static: dict[str, str | dg.MetadataValue] = {"mode": mode}
    if url := ui_url(session):
        context.log.info(f"Spark UI: {url}")
        static["spark_ui"] = dg.MetadataValue.url(url)

    # Mid-run and at termination: observations, and a materialisation when rows landed (at
    # most once a minute mid-run); an available-now run's end materialises every table once
    # more with the totals (then the tables' checks run).
    record = AssetProgress(
        context,
        [spec.key for spec in SPECS],
        counter="rows",
        static=static,
        min_interval_s=config.record_every_s,
    )

    def loop(stop: threading.Event, report: Callable[[Snapshot], None]) -> "QueryTotals":
        return run_aggregation(
            session,
            settings,
            stop,
            available_now=config.available_now,
            report=report,
            report_every=config.progress_every_s,
        )

    # The session is left to the run's process exit: getOrCreate shares it in-process.
    try:
        totals = run_until_terminated(context, loop, record)
    except dg.DagsterExecutionInterruptedError:
        record.flush()  # terminated: the final counts, recorded before the run ends Canceled
        raise
    if not totals.input_rows:
        record.flush()  # nothing landed: the last counts as an observation, no materialisation
        return
    summary = {
        **static,
        "rows": totals.input_rows,
        "batches": totals.batches,
        "invalid_rows": totals.invalid_rows,
        "dropped_late_rows": totals.dropped_late_rows,
    }
    for spec in SPECS:
        yield dg.MaterializeResult(asset_key=spec.key, metadata=summary)


aggregate_prices = dg.define_asset_job(
    "aggregate_prices",
    selection=dg.AssetSelection.assets(spark_aggregation),
    description="The Spark streaming job: Kafka to Cassandra prices, windowed means and candles.",
    tags=STREAMING_TAGS,
    executor_def=dg.in_process_executor,
)
