"""Two aggregation runs never share a checkpoint; two sinks never share a static member id."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from crypto_platform.definitions import defs
from crypto_platform_tests.conftest import REPO

POOLS = {
    "aggregate_prices": "spark_aggregation",
    "persist_prices": "mongo_sink",
    "gap_repair": "gap_repair",
}
WRITERS = {
    "aggregate_prices": "spark_aggregation",
    "persist_prices": "store_ticks",
    "gap_repair": "repair_gap",
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
