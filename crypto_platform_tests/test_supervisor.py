"""The streaming_supervisor sensor against a real DagsterInstance."""

from __future__ import annotations

import datetime
import time
import uuid
from collections.abc import Callable, Iterator

import dagster as dg
import pytest

from crypto_platform.definitions import defs

JOBS = {"ingest_prices", "persist_prices", "aggregate_prices"}


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as test_instance:
        yield test_instance


def evaluate(instance: dg.DagsterInstance, cursor: str | None = None):
    sensor = defs.get_sensor_def("streaming_supervisor")
    context = dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs)
    return sensor.evaluate_tick(context)


def add_run(instance: dg.DagsterInstance, job_name: str, status: dg.DagsterRunStatus) -> None:
    instance.add_run(dg.DagsterRun(job_name=job_name, run_id=str(uuid.uuid4()), status=status))


def add_ended_run(
    instance: dg.DagsterInstance, job_name: str, ran_s: float, ended: str = "PIPELINE_SUCCESS"
) -> None:
    """A run that started `ran_s` seconds before it ended, just now (as the run worker records)."""
    run = instance.add_run(
        dg.DagsterRun(
            job_name=job_name, run_id=str(uuid.uuid4()), status=dg.DagsterRunStatus.NOT_STARTED
        )
    )
    now = time.time()
    for event, at in (("PIPELINE_START", now - ran_s), (ended, now)):
        instance.handle_run_event(
            run.run_id,
            dg.DagsterEvent(event_type_value=event, job_name=job_name),
            datetime.datetime.fromtimestamp(at, tz=datetime.UTC),
        )


def test_it_is_on_by_default_and_watches_both_jobs() -> None:
    sensor = defs.get_sensor_def("streaming_supervisor")

    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert {target.job_name for target in sensor.targets} == JOBS


def test_launches_every_missing_job_with_distinct_run_keys(instance: dg.DagsterInstance) -> None:
    result = evaluate(instance)

    assert {request.job_name for request in result.run_requests} == JOBS
    assert len({request.run_key for request in result.run_requests}) == 3


def test_never_launches_a_duplicate_of_an_active_run(instance: dg.DagsterInstance) -> None:
    add_run(instance, "ingest_prices", dg.DagsterRunStatus.STARTED)

    result = evaluate(instance)

    assert {r.job_name for r in result.run_requests} == {"persist_prices", "aggregate_prices"}

    add_run(instance, "persist_prices", dg.DagsterRunStatus.STARTING)
    add_run(instance, "aggregate_prices", dg.DagsterRunStatus.STARTED)
    result = evaluate(instance, result.cursor)

    assert not result.run_requests
    assert "ingest_prices is started" in result.skip_message
    assert "persist_prices is starting" in result.skip_message


def test_relaunches_a_terminated_run_with_a_new_run_key(instance: dg.DagsterInstance) -> None:
    first = evaluate(instance)
    for job in JOBS:  # terminated after an hour: Canceled, as each of the three ends
        add_ended_run(instance, job, ran_s=3600, ended="PIPELINE_CANCELED")

    second = evaluate(instance, first.cursor)

    assert {request.job_name for request in second.run_requests} == JOBS
    assert not {r.run_key for r in first.run_requests} & {r.run_key for r in second.run_requests}


def test_backs_off_when_runs_keep_being_canceled_soon_after_starting(
    instance: dg.DagsterInstance,
) -> None:
    add_run(instance, "persist_prices", dg.DagsterRunStatus.STARTED)
    add_run(instance, "ingest_prices", dg.DagsterRunStatus.STARTED)
    for _ in range(2):
        add_ended_run(instance, "aggregate_prices", ran_s=5, ended="PIPELINE_CANCELED")

    result = evaluate(instance)

    assert not result.run_requests
    assert "aggregate_prices failed or ended within 60s of starting 2 time(s) in a row" in (
        result.skip_message
    )


def test_run_keys_stay_unique_when_the_cursor_is_reset(instance: dg.DagsterInstance) -> None:
    first = evaluate(instance)
    for job in JOBS:
        add_ended_run(instance, job, ran_s=3600)

    after_reset = evaluate(instance, cursor=None)
    again = evaluate(instance, cursor=None)

    assert {r.job_name for r in after_reset.run_requests} == JOBS
    assert not {r.run_key for r in first.run_requests} & {
        r.run_key for r in after_reset.run_requests
    }
    # Deterministic: the same runs give the same keys (Dagster launches a key once).
    assert {r.run_key for r in again.run_requests} == {r.run_key for r in after_reset.run_requests}


def test_backs_off_when_runs_keep_ending_soon_after_starting(
    instance: dg.DagsterInstance,
) -> None:
    add_run(instance, "persist_prices", dg.DagsterRunStatus.STARTED)
    add_run(instance, "aggregate_prices", dg.DagsterRunStatus.STARTED)
    for _ in range(3):  # a replay at the end of its file: SUCCESS within a second
        add_ended_run(instance, "ingest_prices", ran_s=1)

    result = evaluate(instance)

    assert not result.run_requests
    assert "ingest_prices failed or ended within 60s of starting 3 time(s) in a row" in (
        result.skip_message
    )


def test_backs_off_after_consecutive_failures(instance: dg.DagsterInstance) -> None:
    add_run(instance, "persist_prices", dg.DagsterRunStatus.STARTED)
    add_run(instance, "aggregate_prices", dg.DagsterRunStatus.STARTED)
    for _ in range(3):
        add_run(instance, "ingest_prices", dg.DagsterRunStatus.FAILURE)

    result = evaluate(instance)

    assert not result.run_requests
    assert (
        "ingest_prices failed or ended within 60s of starting 3 time(s) in a row; relaunch in"
        in (result.skip_message)
    )


def test_leaves_aggregate_prices_to_the_schedule_when_continuous_is_off(
    instance: dg.DagsterInstance, loaded_env: Callable[[str, str], None]
) -> None:
    loaded_env("CRYPTO_SPARK_CONTINUOUS", "false")

    result = evaluate(instance)

    assert {r.job_name for r in result.run_requests} == {"ingest_prices", "persist_prices"}
    schedule = defs.get_schedule_def("aggregate_prices_catch_up")
    moment = datetime.datetime(2026, 11, 21, 12, 5, tzinfo=datetime.UTC)
    with dg.build_schedule_context(instance=instance, scheduled_execution_time=moment) as context:
        request = schedule.evaluate_tick(context).run_requests[0]
    assert request.run_config["ops"]["spark_aggregation"]["config"]["available_now"] is True


def test_reads_continuous_mode_once_not_at_each_evaluation(
    instance: dg.DagsterInstance,
    loaded_env: Callable[[str, str], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The setting the definitions loaded with holds until the code location reloads."""
    loaded_env("CRYPTO_SPARK_CONTINUOUS", "false")
    evaluate(instance)
    monkeypatch.setenv("CRYPTO_SPARK_CONTINUOUS", "true")

    result = evaluate(instance)

    assert {r.job_name for r in result.run_requests} == {"ingest_prices", "persist_prices"}
