"""A terminated streaming run stops its loop cleanly, records its last counts, ends Canceled.

Runs are terminated here as Dagster's run launcher does it: the run is marked canceling
and its process gets SIGINT, which Dagster raises in the running op as its interrupt.
The three streaming jobs under a real `dagster dev`: test_devserver.py.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import pytest
from pyspark.sql import SparkSession

from crypto_platform.defs.analytics.assets import CASSANDRA_AGGREGATES_BY_SYMBOL, spark_aggregation
from crypto_platform.defs.streams.long_running import AssetProgress, run_until_terminated
from crypto_platform.settings import Settings
from crypto_platform.spark.session import ui_url
from crypto_platform.streaming.progress import Snapshot
from crypto_platform_tests.spark_helpers import aggregation_resources, deterministic_ticks, publish

STREAM = dg.AssetKey(["test", "stream"])
CANCELED = dg.DagsterRunStatus.CANCELED
EVERY_REPORT = {"progress_every_s": 1.0, "record_every_s": 0.0}


def terminate_when(instance: dg.DagsterInstance, ready: Callable[[], bool]) -> None:
    """Terminate the instance's started run once `ready()` (or after 2 min), as Dagster does."""

    def terminate() -> None:
        deadline = time.monotonic() + 120
        while not ready() and time.monotonic() < deadline:
            time.sleep(0.1)
        started = instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
        if started:  # never a SIGINT outside a run: it would stop pytest
            instance.report_run_canceling(started[0])
            os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=terminate, name="terminate", daemon=True).start()


def recorded(instance: dg.DagsterInstance, run_id: str) -> list[dg.DagsterEvent]:
    """The run's events as Dagster stored them, in order."""
    return [entry.dagster_event for entry in instance.all_logs(run_id) if entry.dagster_event]


def asset_events(events: list[dg.DagsterEvent], key: dg.AssetKey) -> list[dg.DagsterEvent]:
    return [
        event
        for event in events
        if (event.is_step_materialization or event.event_type_value == "ASSET_OBSERVATION")
        and event.asset_key == key
    ]


def metadata_of(event: dg.DagsterEvent) -> dict[str, dg.MetadataValue]:
    if event.is_step_materialization:
        return dict(event.step_materialization_data.materialization.metadata)
    return dict(event.asset_observation_data.asset_observation.metadata)


def test_a_terminated_run_stops_its_loop_cleanly_then_ends_canceled() -> None:
    reported = threading.Event()
    stopped_at: list[int] = []

    def loop(stop: threading.Event, report: Callable[[Snapshot], None]) -> int:
        count = 0
        while not stop.wait(0.05):
            count += 1
            report({"count": count})
            reported.set()
        count += 1  # the batch in hand, finished after the stop (as the engine's loops do)
        stopped_at.append(count)
        report({"count": count})
        return count

    @dg.op
    def stream(context) -> None:  # unannotated: Dagster rejects a postponed (string) hint
        record = AssetProgress(context, [STREAM], min_interval_s=3600)
        try:
            run_until_terminated(context, loop, record)
        finally:
            record.flush()

    @dg.job
    def streaming() -> None:
        stream()

    with dg.instance_for_test() as instance:
        terminate_when(instance, reported.is_set)
        result = streaming.execute_in_process(instance=instance, raise_on_error=False)
        run = instance.get_run_by_id(result.run_id)
        events = recorded(instance, result.run_id)

    assert run is not None and run.status == CANCELED
    kinds = [event.event_type_value for event in events]
    (failure,) = [event for event in events if event.is_step_failure]
    assert failure.step_failure_data.error is not None
    assert failure.step_failure_data.error.cls_name == "DagsterExecutionInterruptedError"
    # The loop finished its batch; its last count was recorded before the run ended.
    last = asset_events(events, STREAM)[-1]
    assert stopped_at and metadata_of(last)["count"].value == stopped_at[0]
    assert events.index(last) < kinds.index("PIPELINE_CANCELED")


def test_spark_leaves_ctrl_c_to_its_caller(spark: SparkSession) -> None:
    """PySpark's handler would cancel every job and raise KeyboardInterrupt, not Dagster's."""
    assert getattr(signal.getsignal(signal.SIGINT), "__module__", None) != "pyspark.core.context"


def test_a_terminated_aggregation_records_its_totals_and_links_its_spark_ui(
    spark: SparkSession, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkpoints = tmp_path / "checkpoints"
    monkeypatch.setenv("CRYPTO_SPARK_CHECKPOINT_DIR", str(checkpoints))
    publish(settings, deterministic_ticks(30))  # 90 ticks: three coins

    with dg.instance_for_test() as instance:

        def all_landed() -> bool:
            event = instance.get_latest_materialization_event(CASSANDRA_AGGREGATES_BY_SYMBOL)
            return event is not None and event.asset_materialization.metadata["rows"].value == 90

        terminate_when(instance, all_landed)
        result = dg.materialize(
            [spark_aggregation],
            instance=instance,
            resources=aggregation_resources(settings),
            # Every report recorded, so the test sees the rows land.
            run_config=dg.RunConfig(ops={"spark_aggregation": {"config": EVERY_REPORT}}),
            raise_on_error=False,
        )
        run = instance.get_run_by_id(result.run_id)
        events = recorded(instance, result.run_id)

    assert run is not None and run.status == CANCELED
    kinds = [event.event_type_value for event in events]
    # After the stop the queries' totals were recorded (rows unchanged: an observation).
    last = asset_events(events, CASSANDRA_AGGREGATES_BY_SYMBOL)[-1]
    assert events.index(last) < kinds.index("PIPELINE_CANCELED")
    metadata = metadata_of(last)
    assert metadata["rows"].value == 90 and metadata["mode"].value == "continuous"
    url = ui_url(spark)
    assert url is not None and metadata["spark_ui"] == dg.MetadataValue.url(url)
