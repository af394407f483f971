"""The Dagster definitions load, and the asset graph is what we mean it to be."""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import pytest

import crypto_platform.defs
from crypto_platform.definitions import defs
from crypto_platform.defs.streams.freshness import stream_freshness
from crypto_platform.ticks import Tick
from crypto_platform_tests.conftest import REPO


def test_definitions_load() -> None:
    dg.Definitions.validate_loadable(defs)


# The asset graph: key -> (group, kinds, parents). A changed key, group or edge shows here.
# The hour's completeness: its settled ticks, and its repair; the statistics: the hour's
# settled ticks, and its completeness (whose blocking check they wait for).
COMPLETENESS_INPUTS = {"mongo/settled_hours", "cassandra/repaired_hours"}
STATISTICS_INPUTS = {"mongo/settled_hours", "completeness/hourly_completeness"}
GRAPH = {
    "sources/binance": ("sources", {"api"}, set()),
    "sources/coinranking": ("sources", {"api"}, set()),
    "sources/simulated": ("sources", {"python"}, set()),
    "kafka/crypto_prices": (
        "streams", {"kafka"}, {"sources/binance", "sources/coinranking", "sources/simulated"}
    ),
    "kafka/crypto_prices_dlq": ("streams", {"kafka"}, {"kafka/crypto_prices"}),
    "mongo/prices": ("streams", {"mongodb"}, {"kafka/crypto_prices"}),
    "mongo/settled_hours": ("streams", {"mongodb"}, {"mongo/prices"}),
    "cassandra/prices_by_symbol": ("analytics", {"spark", "cassandra"}, {"kafka/crypto_prices"}),
    "cassandra/latest_prices": ("analytics", {"spark", "cassandra"}, {"kafka/crypto_prices"}),
    "cassandra/candles": ("analytics", {"spark", "cassandra"}, {"kafka/crypto_prices"}),
    "cassandra/aggregates_by_symbol": (
        "analytics", {"spark", "cassandra"}, {"kafka/crypto_prices"}
    ),
    "cassandra/latest_aggregates": ("analytics", {"spark", "cassandra"}, {"kafka/crypto_prices"}),
    "statistics/price_statistics": ("statistics", {"mongodb", "python"}, STATISTICS_INPUTS),
    "statistics/price_jumps": ("statistics", {"mongodb", "python"}, STATISTICS_INPUTS),
    "statistics/volatility": ("statistics", {"mongodb", "python"}, STATISTICS_INPUTS),
    "cassandra/repaired_hours": (
        "completeness", {"cassandra", "mongodb", "python"}, {"mongo/prices"}
    ),
    "completeness/hourly_completeness": (
        "completeness", {"mongodb", "python"}, COMPLETENESS_INPUTS
    ),
    "reports/storage_growth_report": (
        "reports",
        {"mongodb", "cassandra", "python"},
        {"mongo/prices", "cassandra/prices_by_symbol", "cassandra/latest_prices",
         "cassandra/aggregates_by_symbol", "cassandra/latest_aggregates", "cassandra/candles"},
    ),
    "reports/throughput_report": (
        "reports",
        {"kafka", "mongodb", "cassandra", "python"},
        {"kafka/crypto_prices", "kafka/crypto_prices_dlq", "mongo/prices",
         "cassandra/prices_by_symbol"},
    ),
}  # fmt: skip

CHECKS = {
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


def test_checks_are_the_documented_ones_and_only_the_hours_check_blocks() -> None:
    """A check blocks only where it can: per hour, in the run of the hour's statistics."""
    graph = defs.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.asset_check_keys}
    blocking = {
        key.to_user_string() for key in graph.asset_check_keys if graph.get_check_spec(key).blocking
    }
    hour_complete = dg.AssetCheckKey(
        dg.AssetKey(["completeness", "hourly_completeness"]), "hour_complete"
    )

    assert keys == CHECKS
    assert blocking == {"completeness/hourly_completeness:hour_complete"}
    assert (
        graph.get(hour_complete).partitions_def == graph.get(hour_complete.asset_key).partitions_def
    )


CASSANDRA_TABLES = {
    f"cassandra/{table}"
    for table in (
        "prices_by_symbol",
        "latest_prices",
        "aggregates_by_symbol",
        "latest_aggregates",
        "candles",
    )
}


def test_the_streams_freshness_is_dagsters_own_policy_from_the_setting() -> None:
    fresh = {
        spec.key.to_user_string()
        for spec in defs.resolve_all_asset_specs()
        if spec.freshness_policy == stream_freshness()
    }

    assert fresh == {"kafka/crypto_prices", "mongo/prices", *CASSANDRA_TABLES}


@pytest.mark.parametrize(("max_age", "window_s"), [("120", 120), ("5", 60)])
def test_the_freshness_window_is_the_tick_max_age_at_least_a_minute(
    loaded_env: Callable[[str, str], None], max_age: str, window_s: int
) -> None:
    loaded_env("CRYPTO_CHECK_TICK_MAX_AGE_S", max_age)

    policy = stream_freshness()

    assert policy == dg.FreshnessPolicy.time_window(fail_window=dt.timedelta(seconds=window_s))


def test_the_stores_carry_their_table_name_and_column_schema() -> None:
    specs = {spec.key.to_user_string(): spec for spec in defs.resolve_all_asset_specs()}
    names = {key: spec.metadata.get("dagster/table_name") for key, spec in specs.items()}
    schema = specs["mongo/prices"].metadata["dagster/column_schema"]

    assert {key: name for key, name in names.items() if name} == {
        "kafka/crypto_prices": "kafka.crypto.prices",
        "kafka/crypto_prices_dlq": "kafka.crypto.prices.dlq",
        "mongo/prices": "mongodb.crypto.prices",
        **{key: f"cassandra.crypto.{key.split('/')[1]}" for key in CASSANDRA_TABLES},
    }
    aggregates = specs["cassandra/aggregates_by_symbol"].metadata["dagster/column_schema"]
    assert {"symbol", "source", "window_start", "harmonic_mean"} <= {
        column.name for column in aggregates.columns
    }
    # Every field of the tick, and what the sink adds.
    assert {column.name for column in schema.columns} == {
        *Tick.model_fields,
        "_id",
        "event_time",
        "handed_at_ms",
    }


def test_statistics_are_hourly_and_jobs_resolve() -> None:
    graph = defs.resolve_asset_graph()
    stats = graph.get(dg.AssetKey(["statistics", "price_statistics"]))

    assert isinstance(stats.partitions_def, dg.HourlyPartitionsDefinition)
    assert defs.resolve_job_def("aggregate_prices") is not None
    assert defs.resolve_sensor_def("automation") is not None
    assert defs.resolve_sensor_def("settled_hours") is not None


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


def test_the_defs_folder_holds_only_domains_that_import_each_other_one_way() -> None:
    root = Path(crypto_platform.defs.__file__).parent
    domains = sorted(path.name for path in root.iterdir() if (path / "__init__.py").exists())
    assert sorted(path.name for path in root.glob("*.py")) == ["__init__.py"]
    imports = {
        (domain, match)
        for domain in domains
        for module in (root / domain).glob("*.py")
        for match in re.findall(r"^from crypto_platform\.defs\.(\w+)", module.read_text(), re.M)
        if match != domain
    }
    assert {(a, b) for a, b in imports if (b, a) in imports} == set()
    assert all(b in domains for _, b in imports)
