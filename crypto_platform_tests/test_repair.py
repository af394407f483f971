"""The repair: a span's Cassandra rows recomputed from MongoDB, late ticks included."""

from __future__ import annotations

import json
import threading

import dagster as dg
from pyspark.sql import SparkSession

from crypto_platform.completeness.repair import repair
from crypto_platform.defs.completeness.assets import repaired_hours
from crypto_platform.defs.completeness.jobs import DayConfig, day_candles
from crypto_platform.defs.completeness.sensors import late_tick_sensor
from crypto_platform.settings import Settings
from crypto_platform.spark.job import run_aggregation
from crypto_platform_tests.conftest import run_cli
from crypto_platform_tests.spark_helpers import (
    T0_MS,
    assert_matches,
    count_rows,
    deterministic_ticks,
    publish,
    reference_candles,
    reference_windows,
    stored_candles,
    stored_windows,
)
from crypto_platform_tests.streaming_helpers import sink_until_idle, stored_count
from crypto_platform_tests.test_reports import resources

HOUR_MS = 3_600_000


def of(candles: dict, *intervals: str) -> dict:
    """The candles of some intervals only."""
    return {key: value for key, value in candles.items() if key[2] in intervals}


def test_late_ticks_reach_every_window_and_table_through_the_repair(
    spark: SparkSession, settings: Settings, tmp_path
) -> None:
    s = settings.model_copy(update={"spark_checkpoint_dir": tmp_path / "checkpoints"})
    on_time = sorted(deterministic_ticks(200), key=lambda tick: tick.event_time_ms)
    for part in (on_time[:300], on_time[300:]):  # two batches: the watermark moves on
        publish(s, part)
        run_aggregation(spark, s, threading.Event(), available_now=True)
    sink_until_idle(s)
    late = deterministic_ticks(2, start_ms=T0_MS + 30_000, step_ms=20_000, seed=97)
    publish(s, late)
    totals = run_aggregation(spark, s, threading.Event(), available_now=True)
    assert sink_until_idle(s).late == len(late)  # the sink sees them late as Spark does
    ticks = on_time + late
    assert totals.dropped_late_rows == len(late) and stored_count(s) == len(ticks)
    assert count_rows(s, "prices_by_symbol") == len(on_time)  # the late ones missed Cassandra
    assert stored_candles(s, ticks) == reference_candles(on_time)  # and the candles

    # The automation: the hour the sink recorded is repaired once its windows are final.
    with dg.instance_for_test() as instance:
        with dg.build_sensor_context(instance=instance, resources=resources(s)) as context:
            result = late_tick_sensor(context)
        assert isinstance(result, dg.SensorResult)
        (request,) = result.run_requests or []
        assert request.partition_key == "2026-01-05-12:00"
        resources_ = resources(s)
        with dg.build_sensor_context(
            instance=instance, resources=resources_, cursor=result.cursor
        ) as context:
            assert not late_tick_sensor(context).run_requests  # nothing new since
        repaired = dg.materialize(
            [repaired_hours], partition_key=request.partition_key, resources=resources(s),
            instance=instance,
        )  # fmt: skip
        assert repaired.success
        assert count_rows(s, "prices_by_symbol") == len(ticks)
        assert_matches(stored_windows(s, ticks), reference_windows(ticks))
        # The closed candles count the late ticks now. The hour's and the day's are still
        # open in the stream, whose state lacks them: the repair leaves them to the stream.
        assert of(stored_candles(s, ticks), "1m", "5m") == of(reference_candles(ticks), "1m", "5m")
        assert of(stored_candles(s, ticks), "1h", "1d") == of(
            reference_candles(on_time), "1h", "1d"
        )

        # Past the day's end and the watermark, the stream closes them; the hour's second
        # repair (the sensor asks again once they close) and the day's rebuild (day_candles)
        # then count the late ticks in them too.
        next_day = deterministic_ticks(1, start_ms=T0_MS + 12 * HOUR_MS + 11 * 60_000, seed=5)
        publish(s, next_day)
        run_aggregation(spark, s, threading.Event(), available_now=True)
        sink_until_idle(s)
        with dg.build_sensor_context(
            instance=instance, resources=resources(s), cursor=result.cursor
        ) as context:
            (again,) = late_tick_sensor(context).run_requests or []
        assert again.partition_key == request.partition_key
        assert dg.materialize(
            [repaired_hours], partition_key=again.partition_key, resources=resources(s),
            instance=instance,
        ).success  # fmt: skip
        rebuilt = day_candles.execute_in_process(
            run_config=dg.RunConfig(ops={"rebuild_day": DayConfig(day="2026-01-05")}),
            resources=resources(s), instance=instance,
        )  # fmt: skip
        assert rebuilt.success
    assert stored_candles(s, ticks + next_day) == reference_candles(ticks + next_day)

    # By hand, over the hour before too (windows that began there): the same rows again.
    result = run_cli(s, "repair", "--since", "2026-01-05T11:00", "--until", "2026-01-05T13:00")

    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["symbols"] == ["BTC", "ETH", "SOL"]
    assert summary["ticks_written"] == len(ticks) and summary["hours"][0] == T0_MS - HOUR_MS
    again = repair(s, T0_MS - HOUR_MS, T0_MS + HOUR_MS)
    assert again.ticks_written == len(ticks) and again.windows_written == summary["windows_written"]
    assert count_rows(s, "prices_by_symbol") == len(ticks) + len(next_day)
    assert_matches(stored_windows(s, ticks), reference_windows(ticks))
    assert stored_candles(s, ticks + next_day) == reference_candles(ticks + next_day)
