"""`settled_hours`: records each hour of ticks once the MongoDB sink has stored past it.

The sink reports, on each materialisation of `mongo/prices`, the newest event time it has
stored (`NEWEST_STORED`; its commit follows the write). An hour has settled once that
time, less the watermark (CRYPTO_AGGREGATE_WATERMARK_S), is past the hour's end: a tick of
the hour arriving later is late by the rule the sink and Spark share, and the sink records
its hour for the repair, which runs the hour again. The clock alone cannot tell: behind a
sink that lags or stopped, the hour stays open.

Each settled hour becomes a runless materialisation of its `mongo/settled_hours`
partition, from which the hour's completeness and statistics run (their automation
conditions). The cursor is the end of the last hour recorded; without one, only the
newest settled hour is recorded, not every hour since the partitions begin. At most
`MAX_HOURS` are recorded per evaluation, oldest first (a sink catching up after days).
The watermark is the one the definitions loaded with (`loaded_settings`), not read again
at each evaluation.
"""

import datetime as dt
from collections.abc import Sequence

import dagster as dg

from crypto_platform.defs.resources.clients import loaded_settings
from crypto_platform.defs.streams.assets import MONGO_PRICES, SETTLED_HOURS
from crypto_platform.defs.streams.hours import HOURLY
from crypto_platform.streaming.sink import NEWEST_STORED

MAX_HOURS = 24
HOUR = dt.timedelta(hours=1)


def _utc(ms: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC)


def newest_stored_ms(instance: dg.DagsterInstance) -> int | None:
    """The newest event time the sink reported stored (None before it stored anything)."""
    event = instance.get_latest_materialization_event(MONGO_PRICES)
    materialization = event.asset_materialization if event else None
    figure = materialization.metadata.get(NEWEST_STORED) if materialization else None
    if isinstance(figure, dg.IntMetadataValue | dg.FloatMetadataValue) and figure.value:
        return int(figure.value)
    return None


def settled_hours_between(
    cursor: dt.datetime | None, settled_until: dt.datetime, now: dt.datetime
) -> tuple[Sequence[str], dt.datetime | None]:
    """The partition keys of the hours settled since `cursor`, and the next cursor.

    None for the cursor when no hour has settled since (the cursor stays).
    """
    last_end = min(settled_until, now).replace(minute=0, second=0, microsecond=0)
    start = max(cursor or last_end - HOUR, HOURLY.start)
    end = min(last_end, start + MAX_HOURS * HOUR)
    if end <= start:
        return [], None
    return HOURLY.get_partition_keys_in_time_window(dg.TimeWindow(start, end)), end


@dg.sensor(
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Records each hour of ticks (mongo/settled_hours) once the MongoDB sink has "
    "stored past its end, less the watermark; the hour's completeness and statistics start "
    "from it.",
)
def settled_hours(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    newest = newest_stored_ms(context.instance)
    if newest is None:
        return dg.SensorResult(skip_reason=f"mongo/prices has reported no {NEWEST_STORED} yet")
    now = dt.datetime.now(dt.UTC)
    # No hour settles past now; bounded here, a stored time beyond year 9999 converts too.
    watermark_ms = loaded_settings().aggregate_watermark_s * 1000
    settled_ms = min(newest - watermark_ms, now.timestamp() * 1000)
    settled_until = _utc(settled_ms)
    cursor = dt.datetime.fromisoformat(context.cursor) if context.cursor else None
    keys, next_cursor = settled_hours_between(cursor, settled_until, now)
    if next_cursor is None:
        return dg.SensorResult(skip_reason=f"settled until {settled_until:%Y-%m-%d %H:%M:%S}")
    metadata = {
        "newest_stored_event": dg.MetadataValue.timestamp(newest / 1000),
        "settled_until": dg.MetadataValue.timestamp(settled_until),
    }
    return dg.SensorResult(
        asset_events=[
            dg.AssetMaterialization(SETTLED_HOURS, partition=key, metadata=metadata) for key in keys
        ],
        cursor=next_cursor.isoformat(),
    )
