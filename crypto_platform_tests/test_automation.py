"""Automation and progress recording, evaluated with Dagster's own test helpers (no servers)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterator

import dagster as dg
import pytest

from crypto_platform.defs.analytics.schedules import aggregate_prices_catch_up
from crypto_platform.defs.completeness.assets import (
    HOUR_COMPLETE,
    HOURLY_COMPLETENESS,
    REPAIRED_HOURS,
    hourly_completeness,
    repaired_hours,
)
from crypto_platform.defs.reports.assets import (
    STORAGE_GROWTH_REPORT,
    THROUGHPUT_REPORT,
    storage_growth_report,
    throughput_report_asset,
)
from crypto_platform.defs.resources.clients import CassandraResource, KafkaResource, MongoResource
from crypto_platform.defs.statistics.assets import (
    PRICE_JUMPS,
    PRICE_STATISTICS,
    VOLATILITY,
    price_jumps,
    price_statistics,
    volatility,
)
from crypto_platform.defs.streams.assets import MONGO_PRICES, SETTLED_HOURS, STREAM_ASSETS
from crypto_platform.defs.streams.hours import HOURLY
from crypto_platform.defs.streams.long_running import AssetProgress

STATISTICS = [PRICE_STATISTICS, PRICE_JUMPS, VOLATILITY]
DOWNSTREAM = [repaired_hours, hourly_completeness, price_statistics, price_jumps, volatility,
              storage_growth_report, throughput_report_asset]  # fmt: skip
# Declared only: nothing connects while conditions are evaluated.
RESOURCES = {"kafka": KafkaResource(), "mongo": MongoResource(), "cassandra": CassandraResource()}
DEFS = dg.Definitions(assets=[*STREAM_ASSETS, *DOWNSTREAM], resources=RESOURCES)
HOUR = "2026-03-01-10:00"


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as test_instance:
        yield test_instance


def at(hour: int, minute: int) -> dt.datetime:
    return dt.datetime(2026, 3, 1, hour, minute, tzinfo=dt.UTC)


class Ticks:
    """Evaluates the automation conditions tick after tick, as the sensor does (one cursor)."""

    def __init__(self, instance: dg.DagsterInstance) -> None:
        self.instance = instance
        self.cursor: dg.AssetDaemonCursor | None = None
        self.minute = 0

    def __call__(self) -> dg.EvaluateAutomationConditionsResult:
        self.minute += 1
        result = dg.evaluate_automation_conditions(
            DEFS, self.instance, evaluation_time=at(11, self.minute), cursor=self.cursor
        )
        self.cursor = result.cursor
        return result


def requested(result: dg.EvaluateAutomationConditionsResult, key: dg.AssetKey) -> set[str]:
    return set(result.get_requested_partitions(key))


def hour_audit(passed: bool) -> dg.AssetsDefinition:
    """The hour's completeness with a given `hour_complete` outcome (its own key and spec).

    The hour's ticks are in no MongoDB here, so the outcome is given, not computed.
    """

    @dg.asset(
        key=HOURLY_COMPLETENESS,
        partitions_def=HOURLY,
        check_specs=list(hourly_completeness.check_specs),
    )
    def audit() -> dg.MaterializeResult:
        return dg.MaterializeResult(
            check_results=[dg.AssetCheckResult(check_name=HOUR_COMPLETE, passed=passed)]
        )

    return audit


def audited(instance: dg.DagsterInstance, passed: bool) -> dg.ExecuteInProcessResult:
    """Record the hour's completeness as its run records it."""
    return dg.materialize(
        [hour_audit(passed)], instance=instance, partition_key=HOUR, raise_on_error=False
    )


def test_reports_run_hourly_and_statistics_not_by_the_clock(instance: dg.DagsterInstance) -> None:
    instance.report_runless_asset_event(dg.AssetMaterialization(MONGO_PRICES))

    first = dg.evaluate_automation_conditions(DEFS, instance, evaluation_time=at(10, 30))
    # A new hour has closed and the hourly cron tick passed; but no hour has settled.
    later = dg.evaluate_automation_conditions(
        DEFS, instance, evaluation_time=at(11, 2), cursor=first.cursor
    )
    again = dg.evaluate_automation_conditions(
        DEFS, instance, evaluation_time=at(11, 20), cursor=later.cursor
    )

    assert first.total_requested == 0
    assert later.get_num_requested(STORAGE_GROWTH_REPORT) == 1
    assert later.get_num_requested(THROUGHPUT_REPORT) == 1
    assert later.total_requested == 2  # no completeness, no statistics
    assert again.total_requested == 0


def test_reports_run_once_as_soon_as_their_sources_have_data(
    instance: dg.DagsterInstance,
) -> None:
    for key in {*storage_growth_report.dependency_keys, *throughput_report_asset.dependency_keys}:
        instance.report_runless_asset_event(dg.AssetMaterialization(key))

    first = dg.evaluate_automation_conditions(DEFS, instance, evaluation_time=at(10, 30))
    again = dg.evaluate_automation_conditions(
        DEFS, instance, evaluation_time=at(10, 40), cursor=first.cursor
    )

    assert first.get_num_requested(STORAGE_GROWTH_REPORT) == 1
    assert first.get_num_requested(THROUGHPUT_REPORT) == 1
    assert again.get_num_requested(STORAGE_GROWTH_REPORT) == 0
    assert again.get_num_requested(THROUGHPUT_REPORT) == 0


def test_a_settled_hour_requests_its_completeness_and_statistics_together(
    instance: dg.DagsterInstance,
) -> None:
    tick = Ticks(instance)
    tick()
    instance.report_runless_asset_event(dg.AssetMaterialization(SETTLED_HOURS, partition=HOUR))

    settled, after = tick(), tick()

    # One tick, one partition: one run, in which the blocking check runs first.
    assert requested(settled, HOURLY_COMPLETENESS) == {HOUR}
    for key in STATISTICS:
        assert requested(settled, key) == {HOUR}
    assert after.total_requested == 0


def test_a_failed_hour_check_holds_the_statistics_back_until_it_passes(
    instance: dg.DagsterInstance,
) -> None:
    tick = Ticks(instance)
    tick()
    instance.report_runless_asset_event(dg.AssetMaterialization(SETTLED_HOURS, partition=HOUR))
    tick(), tick()  # requested, and its run under way

    assert not audited(instance, passed=False).success  # a gap not repaired: the run fails
    held = [tick(), tick()]
    assert audited(instance, passed=True).success  # run again (e.g. by hand): the hour is whole
    passed, after = tick(), tick()

    assert [result.total_requested for result in held] == [0, 0]
    for key in STATISTICS:
        assert requested(passed, key) == {HOUR}
    assert requested(passed, HOURLY_COMPLETENESS) == set()
    assert after.total_requested == 0


def test_a_repair_runs_the_hour_again_with_its_statistics(instance: dg.DagsterInstance) -> None:
    tick = Ticks(instance)
    tick()
    assert not audited(instance, passed=False).success
    tick()

    instance.report_runless_asset_event(dg.AssetMaterialization(REPAIRED_HOURS, partition=HOUR))
    repaired = tick()

    # The completeness runs again, the statistics with it (stopped in the run if it fails).
    assert requested(repaired, HOURLY_COMPLETENESS) == {HOUR}
    for key in STATISTICS:
        assert requested(repaired, key) == {HOUR}


def test_a_failed_hour_check_stops_the_statistics_in_its_own_run() -> None:
    """The automation's one run per hour: completeness first, its failed check skips the rest."""
    hour_with_a_gap = hour_audit(passed=False)
    # Were the statistics to run, they would fail on this closed port, not read a server.
    nowhere = {**RESOURCES, "mongo": MongoResource(uri="mongodb://127.0.0.1:9")}
    result = dg.materialize(
        [hour_with_a_gap, price_statistics, price_jumps, volatility],
        partition_key=HOUR,
        resources=nowhere,
        raise_on_error=False,
    )

    started = {event.step_key for event in result.all_events if event.is_step_start}
    assert started == {"completeness__hourly_completeness"}
    materialised = {event.asset_key for event in result.get_asset_materialization_events()}
    assert materialised == {HOURLY_COMPLETENESS}


def test_statistics_partition_backfills_any_closed_hour() -> None:
    partitions = price_statistics.partitions_def
    assert partitions is not None
    keys = partitions.get_partition_keys(current_time=at(3, 10))

    assert keys[0] == "2026-01-01-00:00"
    assert keys[-1] == "2026-03-01-02:00"  # the running hour is not a partition yet


def schedule_result(
    instance: dg.DagsterInstance, loaded_env: Callable[[str, str], None], continuous: str
):
    loaded_env("CRYPTO_SPARK_CONTINUOUS", continuous)
    context = dg.build_schedule_context(instance=instance, scheduled_execution_time=at(10, 5))
    return aggregate_prices_catch_up(context)


def test_catch_up_runs_only_when_continuous_is_off_and_no_run_is_active(
    instance: dg.DagsterInstance, loaded_env: Callable[[str, str], None]
) -> None:
    assert isinstance(schedule_result(instance, loaded_env, "true"), dg.SkipReason)
    request = schedule_result(instance, loaded_env, "false")
    assert isinstance(request, dg.RunRequest)
    assert request.run_config["ops"]["spark_aggregation"]["config"]["available_now"] is True

    instance.add_run(
        dg.DagsterRun(
            job_name="aggregate_prices",
            run_id=str(uuid.uuid4()),
            status=dg.DagsterRunStatus.STARTED,
        )
    )
    skipped = schedule_result(instance, loaded_env, "false")
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
