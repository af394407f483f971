"""The hourly partitions the statistics and completeness assets share, one per closed UTC hour."""

import dagster as dg

# An hour's partition exists once the hour has closed (`end_offset=0`).
HOURLY = dg.HourlyPartitionsDefinition(start_date="2026-01-01-00:00")
