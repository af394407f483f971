"""Both long-running jobs under a real `dagster dev`: launched by the sensor, terminated cleanly."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
from dagster_graphql import DagsterGraphQLClient
from kafka import KafkaAdminClient

from crypto_platform.defs.streams.assets import KAFKA_PRICES, MONGO_PRICES
from crypto_platform.settings import Settings
from crypto_platform_tests.conftest import run_cli
from crypto_platform_tests.dagster_dev import dagster_dev
from crypto_platform_tests.streaming_helpers import stored_count, topic_size, wait_for

pytestmark = pytest.mark.dagster_dev  # a real `dagster dev`

JOBS = ("ingest_prices", "persist_prices")


def started_runs(instance: dg.DagsterInstance) -> dict[str, dg.DagsterRun]:
    runs = instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
    return {run.job_name: run for run in runs}


def committed_total(settings: Settings) -> int:
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    try:
        offsets = admin.list_group_offsets(settings.kafka_consumer_group)
    finally:
        admin.close()
    return sum(o.offset for o in offsets.get(settings.kafka_consumer_group, {}).values())


def test_supervised_jobs_stream_and_stop_cleanly(settings: Settings, tmp_path: Path) -> None:
    env = {**settings.as_env(), "CRYPTO_SOURCE": "simulated"}
    with dagster_dev(tmp_path / "dagster", env) as server:
        instance = dg.DagsterInstance.from_config(str(server.home))
        wait_for(lambda: set(started_runs(instance)) == set(JOBS), 120, "the sensor's launches")
        runs = started_runs(instance)
        assert all(
            run.tags.get("crypto_platform/launched_by") == "streaming_supervisor"
            for run in runs.values()
        )
        wait_for(lambda: stored_count(settings) >= 50, 60, "ticks in MongoDB")

        server.stop_sensor("streaming_supervisor")
        client = DagsterGraphQLClient("127.0.0.1", port_number=server.port)
        for run in runs.values():
            client.terminate_run(run.run_id)
        wait_for(
            lambda: all(
                client.get_run_status(run.run_id).value == "SUCCESS" for run in runs.values()
            ),
            60,
            "both runs to end cleanly",
        )

        for job in JOBS:
            assert len(instance.get_runs(dg.RunsFilter(job_name=job))) == 1  # never a duplicate
        produced = instance.get_latest_materialization_event(KAFKA_PRICES)
        stored = instance.get_latest_materialization_event(MONGO_PRICES)
        assert produced is not None and stored is not None
        sent = produced.asset_materialization.metadata["count"].value
        assert {"rate_per_s", "skipped", "delivery_failures"} <= set(
            produced.asset_materialization.metadata
        )
        assert {"lag", "inserted", "dead_lettered", "write_ms_p50", "write_ms_p99"} <= set(
            stored.asset_materialization.metadata
        )

    # The producer flushed everything it counted; the sink committed exactly what it stored.
    assert topic_size(settings, settings.kafka_topic) == sent
    assert committed_total(settings) == stored_count(settings)
    # Nothing lost: the rest is still in Kafka, and a sink picks it up.
    result = run_cli(settings, "consume", "--until-idle", "3")
    assert result.returncode == 0, result.stderr
    assert stored_count(settings) == sent
