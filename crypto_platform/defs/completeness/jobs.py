"""`gap_repair`: one gap backfilled from its source's history, stored, and its hours repaired.

The op backfills the gap's span (`crypto-platform backfill`), waits until the MongoDB sink
has stored what it sent (the stream is the one way in), then recomputes the span's
Cassandra rows from MongoDB (`crypto-platform repair`) and reports each hour it rewrote as
a materialisation of `cassandra/repaired_hours`: that hour's statistics and completeness
then run again by their automation conditions. The run queue runs one gap of a (source,
coin) at a time, so two repairs never rewrite the same windows at once, and three in all
(`SERIES_TAG`, dagster.yaml).
"""

import datetime as dt
import time
from collections.abc import Iterator

import dagster as dg

from crypto_platform.completeness.backfill import backfill
from crypto_platform.completeness.repair import rebuild_day_candles, repair
from crypto_platform.defs.completeness.assets import REPAIRED_HOURS
from crypto_platform.defs.resources.clients import (
    CassandraResource,
    KafkaResource,
    MongoResource,
    settings_for,
)
from crypto_platform.defs.resources.unreachable import explained
from crypto_platform.defs.streams.hours import HOURLY
from crypto_platform.errors import PlatformError
from crypto_platform.settings import Settings
from crypto_platform.storage import mongo as mongo_store

GAP_TAG = "crypto_platform/gap"
# The (source, coin) a gap run fills: the run queue runs one gap of a series at a time, so
# two repairs never rewrite the same windows at once (dagster.yaml), and other coins' gaps
# beside it.
SERIES_TAG = "crypto_platform/gap_series"
STORED_TIMEOUT_S = 120.0


class GapConfig(dg.Config):
    """The gap: its source and coin and its span [start_ms, end_ms)."""

    source: str
    symbol: str
    start_ms: int
    end_ms: int


def hour_key(hour_ms: int) -> str:
    """The `HOURLY` partition key of the hour starting at `hour_ms`."""
    return dt.datetime.fromtimestamp(hour_ms / 1000, dt.UTC).strftime("%Y-%m-%d-%H:%M")


def _wait_until_stored(settings: Settings, config: GapConfig, sent: int) -> int:
    """Backfilled ticks of the gap MongoDB holds, once it holds `sent` of them (or raise)."""
    query = {
        "source": config.source,
        "symbol": config.symbol,
        "backfilled": True,
        "event_time_ms": {"$gte": config.start_ms, "$lt": config.end_ms},
    }
    client = mongo_store.connect(settings)
    try:
        prices = mongo_store.prices_collection(client, settings)
        deadline = time.monotonic() + STORED_TIMEOUT_S
        while (stored := prices.count_documents(query)) < sent:
            if time.monotonic() > deadline:
                raise PlatformError(
                    f"the MongoDB sink stored {stored} of the {sent} backfilled ticks within "
                    f"{STORED_TIMEOUT_S:.0f}s: is persist_prices running?"
                )
            time.sleep(1.0)
        return stored
    finally:
        client.close()


@dg.op(description="Backfill one gap, wait until it is stored, repair it.")
def repair_gap(
    context: dg.OpExecutionContext,
    config: GapConfig,
    kafka: KafkaResource,
    mongo: MongoResource,
    cassandra: CassandraResource,
) -> Iterator[dg.AssetMaterialization | dg.Output]:
    settings = settings_for(kafka, mongo, cassandra)
    with explained(settings):
        filled = backfill(
            settings, config.start_ms, config.end_ms, [config.symbol], progress=context.log.info
        )
        sent = sum(fill.sent for fill in filled.filled)
        stored = _wait_until_stored(settings, config, sent) if sent else 0
        stats = repair(
            settings, config.start_ms, config.end_ms, symbols=[config.symbol],
            progress=context.log.info,
        )  # fmt: skip
    for hour in sorted(stats.hours):
        yield dg.AssetMaterialization(
            REPAIRED_HOURS,
            partition=hour_key(hour),
            metadata={"gap": f"{config.source}/{config.symbol}", "ticks_backfilled": sent},
        )
    yield dg.Output(
        None,
        metadata={
            "ticks_sent": sent,
            "ticks_stored": stored,
            "ticks_written": stats.ticks_written,
            "windows_written": stats.windows_written,
            "candles_written": stats.candles_written,
            "hours": ", ".join(hour_key(hour) for hour in sorted(stats.hours)),
            "backfill": dg.MetadataValue.json(filled.summary()),
        },
    )


@dg.job(
    description="Backfill one gap from its source's history and repair the hours it touches.",
    tags={"crypto_platform/kind": "gap_repair"},
)
def gap_repair() -> None:
    repair_gap()


repair_hours = dg.define_asset_job(
    "repair_hours",
    selection=[REPAIRED_HOURS],
    partitions_def=HOURLY,
    description="Repair hours of Cassandra rows from MongoDB (late ticks, replayed dead letters).",
)


class DayConfig(dg.Config):
    """The UTC day whose candles to rebuild, `YYYY-MM-DD`."""

    day: str


@dg.op(description="Every series' candle of a closed day, from its hourly candles.")
def rebuild_day(
    context: dg.OpExecutionContext,
    config: DayConfig,
    mongo: MongoResource,
    cassandra: CassandraResource,
) -> dg.Output[None]:
    settings = settings_for(mongo, cassandra)
    try:
        day = dt.datetime.strptime(config.day, "%Y-%m-%d").replace(tzinfo=dt.UTC)
    except ValueError:
        raise PlatformError(f"day {config.day!r}: expected YYYY-MM-DD") from None
    with explained(settings):
        written = rebuild_day_candles(settings, int(day.timestamp() * 1000))
    context.log.info(f"{config.day}: {written} day candles rebuilt from their hourly ones")
    return dg.Output(None, metadata={"day": config.day, "candles_written": written})


@dg.job(
    description="Rebuild a closed day's candles from its hourly ones, which the repairs of the "
    "day's hours corrected (the stream's day candle lacks their late ticks).",
    tags={"crypto_platform/kind": "day_candles"},
)
def day_candles() -> None:
    rebuild_day()


@dg.schedule(
    job=day_candles,
    cron_schedule="30 0 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="At 00:30 UTC, yesterday's candles rebuilt from its hourly ones (the day has "
    "closed in the stream if CRYPTO_AGGREGATE_WATERMARK_S is under 30 minutes).",
)
def day_candles_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    yesterday = (context.scheduled_execution_time - dt.timedelta(days=1)).strftime("%Y-%m-%d")
    return dg.RunRequest(
        run_key=yesterday,
        run_config=dg.RunConfig(ops={"rebuild_day": DayConfig(day=yesterday)}),
    )
