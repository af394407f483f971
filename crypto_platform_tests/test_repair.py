"""The repair: a span's Cassandra rows recomputed from MongoDB, late ticks included."""

from __future__ import annotations

import json
import threading

from pyspark.sql import SparkSession

from crypto_platform.completeness.repair import repair
from crypto_platform.settings import Settings
from crypto_platform.spark.job import run_aggregation
from crypto_platform_tests.conftest import run_cli
from crypto_platform_tests.spark_helpers import (
    T0_MS,
    assert_matches,
    count_rows,
    deterministic_ticks,
    publish,
    reference_windows,
    stored_windows,
)
from crypto_platform_tests.streaming_helpers import sink_until_idle, stored_count

HOUR_MS = 3_600_000


def test_late_ticks_reach_every_window_and_table_through_the_repair(
    spark: SparkSession, settings: Settings, tmp_path
) -> None:
    s = settings.model_copy(update={"spark_checkpoint_dir": tmp_path / "checkpoints"})
    on_time = sorted(deterministic_ticks(200), key=lambda tick: tick.event_time_ms)
    for part in (on_time[:300], on_time[300:]):  # two batches: the watermark moves on
        publish(s, part)
        run_aggregation(spark, s, threading.Event(), available_now=True)
    late = deterministic_ticks(2, start_ms=T0_MS + 30_000, step_ms=20_000, seed=97)
    publish(s, late)
    totals = run_aggregation(spark, s, threading.Event(), available_now=True)
    sink_until_idle(s)
    ticks = on_time + late
    assert totals.dropped_late_rows == len(late) and stored_count(s) == len(ticks)
    assert count_rows(s, "prices_by_symbol") == len(on_time)  # the late ones missed Cassandra

    result = run_cli(s, "repair", "--since", "2026-01-05T12:00", "--until", "2026-01-05T13:00")

    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["symbols"] == ["BTC", "ETH", "SOL"]
    assert summary["ticks_written"] == len(ticks) and summary["hours"][0] == T0_MS - HOUR_MS
    assert count_rows(s, "prices_by_symbol") == len(ticks)
    assert_matches(stored_windows(s, ticks), reference_windows(ticks))
    # Again: the same rows, nothing more.
    again = repair(s, T0_MS, T0_MS + HOUR_MS)
    assert again.ticks_written == len(ticks) and again.windows_written == summary["windows_written"]
    assert count_rows(s, "prices_by_symbol") == len(ticks)
    assert_matches(stored_windows(s, ticks), reference_windows(ticks))
