"""Automation and progress recording, evaluated with Dagster's own test helpers (no servers)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator

import dagster as dg
import pytest

from crypto_platform.defs.analytics.schedules import aggregate_prices_catch_up
from crypto_platform.defs.long_running import AssetProgress
from crypto_platform.defs.reports.assets import (
    STORAGE_GROWTH_REPORT,
    THROUGHPUT_REPORT,
    storage_growth_report,
    throughput_report_asset,
)
from crypto_platform.defs.statistics.assets import (
    PRICE_JUMPS,
    PRICE_STATISTICS,
    VOLATILITY,
    price_jumps,
    price_statistics,
    volatility,
)
from crypto_platform.defs.streams.assets import MONGO_PRICES, STREAM_ASSETS
from crypto_platform.defs.streams.resources import CassandraResource, KafkaResource, MongoResource

DOWNSTREAM = [price_statistics, price_jumps, volatility, storage_growth_report,
              throughput_report_asset]  # fmt: skip
# Declared only: nothing connects while conditions are evaluated.
RESOURCES = {"kafka": KafkaResource(), "mongo": MongoResource(), "cassandra": CassandraResource()}


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as test_instance:
        yield test_instance


def at(hour: int, minute: int) -> dt.datetime:
    return dt.datetime(2026, 3, 1, hour, minute, tzinfo=dt.UTC)


def test_statistics_request_each_hour_when_it_closes_and_reports_run_hourly(
    instance: dg.DagsterInstance,
) -> None:
    instance.report_runless_asset_event(dg.AssetMaterialization(MONGO_PRICES))
    defs = dg.Definitions(assets=[*STREAM_ASSETS, *DOWNSTREAM], resources=RESOURCES)

    first = dg.evaluate_automation_conditions(defs, instance, evaluation_time=at(10, 30))
    # A new hour has closed: its partition appears, and the hourly cron tick passed.
    later = dg.evaluate_automation_conditions(
        defs, instance, evaluation_time=at(11, 2), cursor=first.cursor
    )
    again = dg.evaluate_automation_conditions(
        defs, instance, evaluation_time=at(11, 20), cursor=later.cursor
    )

    assert first.total_requested == 0
    for key in (PRICE_STATISTICS, PRICE_JUMPS, VOLATILITY):
        assert later.get_requested_partitions(key) == {"2026-03-01-10:00"}
    assert later.get_num_requested(STORAGE_GROWTH_REPORT) == 1
    assert later.get_num_requested(THROUGHPUT_REPORT) == 1
    assert again.total_requested == 0


def test_reports_run_once_as_soon_as_their_sources_have_data(
    instance: dg.DagsterInstance,
) -> None:
    defs = dg.Definitions(assets=[*STREAM_ASSETS, *DOWNSTREAM], resources=RESOURCES)
    for key in {*storage_growth_report.dependency_keys, *throughput_report_asset.dependency_keys}:
        instance.report_runless_asset_event(dg.AssetMaterialization(key))

    first = dg.evaluate_automation_conditions(defs, instance, evaluation_time=at(10, 30))
    again = dg.evaluate_automation_conditions(
        defs, instance, evaluation_time=at(10, 40), cursor=first.cursor
    )

    assert first.get_num_requested(STORAGE_GROWTH_REPORT) == 1
    assert first.get_num_requested(THROUGHPUT_REPORT) == 1
    assert again.get_num_requested(STORAGE_GROWTH_REPORT) == 0
    assert again.get_num_requested(THROUGHPUT_REPORT) == 0


def test_statistics_wait_until_their_source_has_data(instance: dg.DagsterInstance) -> None:
    defs = dg.Definitions(assets=[*STREAM_ASSETS, price_statistics], resources=RESOURCES)

    first = dg.evaluate_automation_conditions(defs, instance, evaluation_time=at(10, 30))
    later = dg.evaluate_automation_conditions(
        defs, instance, evaluation_time=at(11, 2), cursor=first.cursor
    )

    assert later.get_num_requested(PRICE_STATISTICS) == 0


def test_statistics_partition_backfills_any_closed_hour() -> None:
    partitions = price_statistics.partitions_def
    assert partitions is not None
    keys = partitions.get_partition_keys(current_time=at(3, 10))

    assert keys[0] == "2026-01-01-00:00"
    assert keys[-1] == "2026-03-01-02:00"  # the running hour is not a partition yet


def schedule_result(instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch, continuous: str):
    monkeypatch.setenv("CRYPTO_SPARK_CONTINUOUS", continuous)
    context = dg.build_schedule_context(instance=instance, scheduled_execution_time=at(10, 5))
    return aggregate_prices_catch_up(context)


def test_catch_up_runs_only_when_continuous_is_off_and_no_run_is_active(
    instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert isinstance(schedule_result(instance, monkeypatch, "true"), dg.SkipReason)
    request = schedule_result(instance, monkeypatch, "false")
    assert isinstance(request, dg.RunRequest)
    assert request.run_config["ops"]["spark_aggregation"]["config"]["available_now"] is True

    instance.add_run(
        dg.DagsterRun(
            job_name="aggregate_prices",
            run_id=str(uuid.uuid4()),
            status=dg.DagsterRunStatus.STARTED,
        )
    )
    skipped = schedule_result(instance, monkeypatch, "false")
    assert isinstance(skipped, dg.SkipReason)
    assert "is started" in (skipped.skip_message or "")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_progress_materialises_only_new_data_at_most_once_a_minute() -> None:
    clock = Clock()
    steps = [(0, 10), (10, 20), (50, 30), (60, 40), (120, 40), (130, 40), (185, 55)]

    @dg.op
    def stream(context) -> None:  # unannotated: Dagster rejects a postponed (string) hint
        record = AssetProgress(context, [MONGO_PRICES], counter="inserted", clock=clock)
        for second, inserted in steps:
            clock.now = second
            record({"inserted": inserted, "rate_per_s": 1.0})
        record.flush()

    @dg.job
    def streaming() -> None:
        stream()

    result = streaming.execute_in_process()
    events = [
        (event.event_type_value, event.step_materialization_data.materialization.metadata)
        if event.is_step_materialization
        else (event.event_type_value, event.asset_observation_data.asset_observation.metadata)
        for event in result.all_events
        if event.is_step_materialization or event.event_type_value == "ASSET_OBSERVATION"
    ]
    assert [(kind, metadata["inserted"].value) for kind, metadata in events] == [
        ("ASSET_MATERIALIZATION", 10),  # the first report with data
        ("ASSET_MATERIALIZATION", 40),  # a minute later, data had landed meanwhile
        ("ASSET_OBSERVATION", 40),  # another minute, nothing new: observed, not materialised
        ("ASSET_MATERIALIZATION", 55),  # the held-back last report, flushed at the end
    ]
