"""Hourly price statistics, jumps and volatility from MongoDB, one partition per UTC hour.

An hour runs once its ticks have settled (`mongo/settled_hours`: the MongoDB sink stored
past the hour), and again when its data changed (a repair of the hour runs its
completeness again), but only while the hour's blocking checks pass: an hour with a gap
not repaired (`completeness/hourly_completeness:hour_complete` failed) waits until the
repair makes it pass. Requested together, the hour's completeness and statistics share a
run, in which the failed check stops the statistics. Older hours are backfilled from the
UI or with `dg launch --assets statistics/price_statistics --partition 2026-01-01-00:00`.
"""

from typing import Any

import dagster as dg

from crypto_platform.defs.automation.conditions import WHEN_THE_HOUR_PASSED
from crypto_platform.defs.completeness.assets import HOURLY_COMPLETENESS
from crypto_platform.defs.reports.metadata import per_coin, table
from crypto_platform.defs.resources.clients import (
    MongoResource,
    stores_for,
)
from crypto_platform.defs.resources.unreachable import explained
from crypto_platform.defs.streams.assets import OWNERS, SETTLED_HOURS
from crypto_platform.defs.streams.hours import HOURLY
from crypto_platform.reports import statistics
from crypto_platform.reports.statistics import Period

GROUP = "statistics"

PRICE_STATISTICS = dg.AssetKey(["statistics", "price_statistics"])
PRICE_JUMPS = dg.AssetKey(["statistics", "price_jumps"])
VOLATILITY = dg.AssetKey(["statistics", "volatility"])

STATISTICS_COLUMNS = (("symbol", "string"), ("count", "int"), ("open", "float"),
                      ("high", "float"), ("low", "float"), ("close", "float"), ("mean", "float"),
                      ("stddev", "float"), ("change_pct", "float"))  # fmt: skip
JUMP_COLUMNS = (("symbol", "string"), ("from_time_ms", "datetime"), ("to_time_ms", "datetime"),
                ("from_price", "float"), ("to_price", "float"), ("move_pct", "float"))  # fmt: skip
VOLATILITY_COLUMNS = (("symbol", "string"), ("returns", "int"), ("latest", "float"),
                      ("peak", "float"))  # fmt: skip


def _hourly(key: dg.AssetKey, description: str) -> dict[str, Any]:
    return {
        "key": key,
        "description": description,
        "group_name": GROUP,
        "kinds": {"mongodb", "python"},
        "owners": OWNERS,
        "deps": [SETTLED_HOURS, HOURLY_COMPLETENESS],
        "partitions_def": HOURLY,
        "automation_condition": WHEN_THE_HOUR_PASSED,
    }


def _period(context: dg.AssetExecutionContext) -> Period:
    return Period.hour(context.partition_time_window.start)


class JumpConfig(dg.Config):
    """A move between consecutive ticks larger than this (percent, either way) is a jump."""

    threshold_pct: float = statistics.DEFAULT_JUMP_THRESHOLD_PCT


class VolatilityConfig(dg.Config):
    """How many consecutive log returns the rolling standard deviation spans."""

    window: int = statistics.DEFAULT_VOLATILITY_WINDOW


@dg.asset(
    **_hourly(
        PRICE_STATISTICS,
        "Per coin and hour: tick count, open, high, low, close, mean, stddev and change %, "
        "computed by a MongoDB aggregation pipeline on the server.",
    )
)
def price_statistics(
    context: dg.AssetExecutionContext,
    mongo: MongoResource,
) -> dg.MaterializeResult:
    stores = stores_for(mongo=mongo)
    with explained(stores.settings):
        rows = statistics.price_statistics(stores, _period(context))
    return dg.MaterializeResult(
        metadata={
            "ticks": sum(row["count"] for row in rows),
            "coins": len(rows),
            "statistics": table(rows, STATISTICS_COLUMNS),
            **per_coin(rows, "change_pct"),
            **per_coin(rows, "count"),
        }
    )


@dg.asset(
    **_hourly(
        PRICE_JUMPS,
        "Moves between consecutive ticks of a coin larger than a threshold (default 1 %), "
        "found with $setWindowFields on the server.",
    )
)
def price_jumps(
    context: dg.AssetExecutionContext,
    config: JumpConfig,
    mongo: MongoResource,
) -> dg.MaterializeResult:
    stores = stores_for(mongo=mongo)
    with explained(stores.settings):
        rows = statistics.price_jumps(stores, _period(context), config.threshold_pct)
    return dg.MaterializeResult(
        metadata={
            "jumps": len(rows),
            "threshold_pct": config.threshold_pct,
            "table": table(rows, JUMP_COLUMNS),
        }
    )


@dg.asset(
    **_hourly(
        VOLATILITY,
        "Per coin and hour: rolling standard deviation of log returns over a window of "
        "consecutive ticks (latest window and peak), computed on the server.",
    )
)
def volatility(
    context: dg.AssetExecutionContext,
    config: VolatilityConfig,
    mongo: MongoResource,
) -> dg.MaterializeResult:
    stores = stores_for(mongo=mongo)
    with explained(stores.settings):
        rows = statistics.volatility(stores, _period(context), config.window)
    return dg.MaterializeResult(
        metadata={
            "window": config.window,
            "table": table(rows, VOLATILITY_COLUMNS),
            **per_coin(rows, "latest"),
        }
    )
