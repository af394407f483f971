"""What the run queue keeps apart: aggregations, sinks, and repairs of one coin's gaps.

Two aggregation runs never share a checkpoint, two sinks never a static member id, two
repairs of one coin's gaps never rewrite its windows at once.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from crypto_platform.definitions import defs
from crypto_platform.defs.completeness.jobs import SERIES_TAG, gap_repair
from crypto_platform_tests.conftest import REPO

POOLS = {
    "aggregate_prices": "spark_aggregation",
    "persist_prices": "mongo_sink",
}
WRITERS = {
    "aggregate_prices": "spark_aggregation",
    "persist_prices": "store_ticks",
}


@pytest.mark.parametrize(("job_name", "pool"), POOLS.items())
def test_the_writer_of_each_job_is_in_its_pool(job_name: str, pool: str) -> None:
    job = defs.resolve_job_def(job_name)

    assert job.get_node_named(WRITERS[job_name]).definition.pool == pool


def test_the_instance_gives_each_pool_one_slot_per_run(tmp_path: Path) -> None:
    (tmp_path / "dagster.yaml").write_text((REPO / "dagster.yaml").read_text())

    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        config = instance.get_concurrency_config()
        for pool in POOLS.values():
            info = instance.event_log_storage.get_concurrency_info(pool)
            assert info.limit == 1
    # Run granularity: a second run waits in the queue instead of starting and blocking.
    assert config.pool_config.pool_granularity.value == "run"  # type: ignore[union-attr]


def test_the_queue_runs_one_gap_repair_per_coin_and_three_in_all(tmp_path: Path) -> None:
    (tmp_path / "dagster.yaml").write_text((REPO / "dagster.yaml").read_text())

    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        limits = instance.get_concurrency_config().run_queue_config.tag_concurrency_limits

    assert {"key": SERIES_TAG, "value": {"applyLimitPerUniqueValue": True}, "limit": 1} in limits
    assert {"key": "crypto_platform/kind", "value": "gap_repair", "limit": 3} in limits
    assert gap_repair.tags["crypto_platform/kind"] == "gap_repair"
