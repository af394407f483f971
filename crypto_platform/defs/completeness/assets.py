"""Every hour complete, and proven: each hour's gaps and completeness, and its repair.

`cassandra/repaired_hours`: an hour (or a range, in one run) of Cassandra rows recomputed
from MongoDB (`crypto-platform repair`). The gap automation materialises the hours it
repairs, and the statistics and completeness of those hours then run again.

`completeness/hourly_completeness`: per source and coin, ticks stored against expected, and
the gaps overlapping the hour; it runs once the hour has settled (`mongo/settled_hours`)
and again when the hour is repaired. Its check `hour_complete`, one result per hour, fails
while the hour has a gap not repaired, so the UI's per-hour check status shows which hours
are whole. The check blocks: failed, it fails its run (nothing downstream in it runs), and
the hour's statistics wait until it passes (their automation condition).
"""

import datetime as dt

import dagster as dg

from crypto_platform.completeness.hours import hour_completeness
from crypto_platform.completeness.ledger import gap_row
from crypto_platform.completeness.repair import repair
from crypto_platform.defs.automation.conditions import WHEN_SETTLED_OR_REPAIRED
from crypto_platform.defs.reports.metadata import table
from crypto_platform.defs.resources.clients import (
    CassandraResource,
    MongoResource,
    settings_for,
)
from crypto_platform.defs.resources.unreachable import explained
from crypto_platform.defs.streams.assets import MONGO_PRICES, OWNERS, SETTLED_HOURS
from crypto_platform.defs.streams.hours import HOURLY

GROUP = "completeness"
REPAIRED_HOURS = dg.AssetKey(["cassandra", "repaired_hours"])
HOURLY_COMPLETENESS = dg.AssetKey(["completeness", "hourly_completeness"])
HOUR_COMPLETE = "hour_complete"
ROW_COLUMNS = (("source", "string"), ("symbol", "string"), ("stored", "int"),
               ("expected", "int"), ("unrepaired_gaps", "int"), ("missing_s", "float"),
               ("complete_pct", "float"))  # fmt: skip
GAP_COLUMNS = (("source", "string"), ("symbol", "string"), ("start", "datetime"),
               ("end", "datetime"), ("ticks_expected", "int"), ("status", "string"),
               ("reason", "string"))  # fmt: skip


def _ms(moment: dt.datetime) -> int:
    return int(moment.timestamp() * 1000)


@dg.asset(
    key=REPAIRED_HOURS,
    description="Hours of Cassandra rows and windows recomputed from MongoDB (the raw store "
    "of record): a range of hours is one run.",
    group_name=GROUP,
    kinds={"cassandra", "mongodb", "python"},
    owners=OWNERS,
    deps=[MONGO_PRICES],
    partitions_def=HOURLY,
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def repaired_hours(
    context: dg.AssetExecutionContext,
    mongo: MongoResource,
    cassandra: CassandraResource,
) -> dg.MaterializeResult:
    settings = settings_for(mongo, cassandra)
    window = context.partition_time_window
    with explained(settings):
        stats = repair(settings, _ms(window.start), _ms(window.end), progress=context.log.info)
    summary = stats.summary()
    return dg.MaterializeResult(
        metadata={
            "ticks_written": stats.ticks_written,
            "windows_written": stats.windows_written,
            "candles_written": stats.candles_written,
            "ticks_per_s": summary["ticks_per_s"],
            "seconds": summary["seconds"],
            "symbols": ", ".join(stats.symbols),
        }
    )


@dg.asset(
    key=HOURLY_COMPLETENESS,
    description="Per hour, source and coin: ticks stored against ticks expected, and the "
    "gaps; its check hour_complete fails, and holds the hour's statistics back, while the "
    "hour has a gap not repaired.",
    group_name=GROUP,
    kinds={"mongodb", "python"},
    owners=OWNERS,
    deps=[SETTLED_HOURS, REPAIRED_HOURS],
    partitions_def=HOURLY,
    automation_condition=WHEN_SETTLED_OR_REPAIRED,
    check_specs=[
        dg.AssetCheckSpec(
            HOUR_COMPLETE,
            asset=HOURLY_COMPLETENESS,
            description="Every gap of the hour is repaired.",
            blocking=True,
            partitions_def=HOURLY,
        )
    ],
)
def hourly_completeness(
    context: dg.AssetExecutionContext,
    mongo: MongoResource,
) -> dg.MaterializeResult:
    settings = settings_for(mongo)
    with explained(settings):
        hour = hour_completeness(settings, _ms(context.partition_time_window.start))
    unrepaired = hour.unrepaired
    gaps = "; ".join(f"{g.source}/{g.symbol} {g.status}" for g in unrepaired[:5])
    return dg.MaterializeResult(
        metadata={
            "complete": table(hour.rows, ROW_COLUMNS),
            "gaps": table([gap_row(gap) for gap in hour.gaps], GAP_COLUMNS),
            "ticks_stored": sum(row["stored"] for row in hour.rows),
            "unrepaired_gaps": len(unrepaired),
            "missing_s": sum(row["missing_s"] for row in hour.rows),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=HOUR_COMPLETE,
                passed=not unrepaired,
                severity=dg.AssetCheckSeverity.ERROR,
                description=f"{len(unrepaired)} gaps not repaired in this hour: {gaps}"
                if unrepaired
                else f"{len(hour.gaps)} gaps in the hour, every one repaired",
            )
        ],
    )
