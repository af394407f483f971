"""Completeness: each hour's gaps and completeness, their backfill, and the repair of hours."""

import dagster as dg

from crypto_platform.defs.completeness.assets import hourly_completeness, repaired_hours
from crypto_platform.defs.completeness.jobs import (
    day_candles,
    day_candles_schedule,
    gap_repair,
    repair_hours,
)
from crypto_platform.defs.completeness.sensors import gap_sensor, late_tick_sensor

defs = dg.Definitions(
    assets=[repaired_hours, hourly_completeness],
    jobs=[gap_repair, repair_hours, day_candles],
    sensors=[gap_sensor, late_tick_sensor],
    schedules=[day_candles_schedule],
)
