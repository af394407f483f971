"""The Dagster definitions load, and the asset graph is what we mean it to be."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg

from crypto_platform.definitions import defs
from crypto_platform_tests.conftest import REPO


def test_definitions_load() -> None:
    dg.Definitions.validate_loadable(defs)


# The asset graph: key -> (group, kinds, parents). A changed key, group or edge shows here.
HOUR_INPUTS = {"mongo/prices", "cassandra/repaired_hours"}  # an hour's ticks, and its repair
GRAPH = {
    "sources/binance": ("sources", {"api"}, set()),
    "sources/coinranking": ("sources", {"api"}, set()),
    "sources/simulated": ("sources", {"python"}, set()),
    "kafka/crypto_prices": (
        "streams", {"kafka"}, {"sources/binance", "sources/coinranking", "sources/simulated"}
    ),
    "kafka/crypto_prices_dlq": ("streams", {"kafka"}, {"kafka/crypto_prices"}),
    "mongo/prices": ("streams", {"mongodb"}, {"kafka/crypto_prices"}),
    "cassandra/prices_by_symbol": ("analytics", {"spark", "cassandra"}, {"kafka/crypto_prices"}),
    "cassandra/latest_prices": ("analytics", {"spark", "cassandra"}, {"kafka/crypto_prices"}),
    "cassandra/aggregates_by_symbol": (
        "analytics", {"spark", "cassandra"}, {"kafka/crypto_prices"}
    ),
    "cassandra/latest_aggregates": ("analytics", {"spark", "cassandra"}, {"kafka/crypto_prices"}),
    "statistics/price_statistics": ("statistics", {"mongodb", "python"}, HOUR_INPUTS),
    "statistics/price_jumps": ("statistics", {"mongodb", "python"}, HOUR_INPUTS),
    "statistics/volatility": ("statistics", {"mongodb", "python"}, HOUR_INPUTS),
    "cassandra/repaired_hours": (
        "completeness", {"cassandra", "mongodb", "python"}, {"mongo/prices"}
    ),
    "completeness/hourly_completeness": ("completeness", {"mongodb", "python"}, HOUR_INPUTS),
    "reports/storage_growth_report": (
        "reports",
        {"mongodb", "cassandra", "python"},
        {"mongo/prices", "cassandra/prices_by_symbol", "cassandra/latest_prices",
         "cassandra/aggregates_by_symbol", "cassandra/latest_aggregates"},
    ),
    "reports/throughput_report": (
        "reports",
        {"kafka", "mongodb", "cassandra", "python"},
        {"kafka/crypto_prices", "kafka/crypto_prices_dlq", "mongo/prices",
         "cassandra/prices_by_symbol"},
    ),
}  # fmt: skip

CHECKS = {
    "mongo/prices:tick_freshness",
    "mongo/prices:positive_prices",
    "mongo/prices:kafka_completeness",
    "mongo/prices:retention_loss",
    "mongo/prices:gaps_repaired",
    "completeness/hourly_completeness:hour_complete",
    "cassandra/prices_by_symbol:positive_prices",
    "cassandra/prices_by_symbol:agrees_with_mongodb",
    "cassandra/aggregates_by_symbol:means_ordered",
    "kafka/crypto_prices_dlq:dlq_growth",
}


def test_asset_graph_snapshot() -> None:
    graph = defs.resolve_asset_graph()
    actual = {
        key.to_user_string(): (
            graph.get(key).group_name,
            set(graph.get(key).kinds),
            {parent.to_user_string() for parent in graph.get(key).parent_keys},
        )
        for key in graph.get_all_asset_keys()
    }

    assert actual == GRAPH


def test_every_asset_has_a_description_and_owners() -> None:
    for spec in defs.resolve_all_asset_specs():
        assert spec.description, spec.key
        assert spec.owners == ["team:data-platform"], spec.key


def test_checks_are_the_documented_ones_and_blocking_where_bad_data_must_stop() -> None:
    graph = defs.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.asset_check_keys}
    blocking = {
        key.to_user_string() for key in graph.asset_check_keys if graph.get_check_spec(key).blocking
    }

    assert keys == CHECKS
    assert blocking == {
        "mongo/prices:positive_prices",
        "cassandra/prices_by_symbol:positive_prices",
        "cassandra/aggregates_by_symbol:means_ordered",
    }


def test_statistics_are_hourly_and_jobs_resolve() -> None:
    graph = defs.resolve_asset_graph()
    stats = graph.get(dg.AssetKey(["statistics", "price_statistics"]))

    assert isinstance(stats.partitions_def, dg.HourlyPartitionsDefinition)
    assert defs.resolve_job_def("aggregate_prices") is not None
    assert defs.resolve_sensor_def("automation") is not None


def test_workspace_validates_with_the_instance_config(tmp_path: Path) -> None:
    (tmp_path / "dagster.yaml").write_text((REPO / "dagster.yaml").read_text())
    result = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "definitions", "validate",
         "-w", "workspace.yaml"],
        cwd=REPO,
        env={**os.environ, "DAGSTER_HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip

    assert result.returncode == 0, result.stdout + result.stderr
    assert "All code locations passed validation" in result.stdout + result.stderr
