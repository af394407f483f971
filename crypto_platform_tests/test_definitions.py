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


def test_asset_keys_are_the_documented_ones() -> None:
    keys = {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}

    assert keys == {
        "kafka/crypto_prices",
        "kafka/crypto_prices_dlq",
        "mongo/prices",
        "cassandra/prices_by_symbol",
        "cassandra/latest_prices",
        "price_aggregates",
    }


def test_spark_assets_have_their_kinds_and_lineage() -> None:
    graph = defs.resolve_asset_graph()
    aggregates = graph.get(dg.AssetKey("price_aggregates"))

    assert {"spark", "cassandra"} <= set(aggregates.kinds)
    assert dg.AssetKey(["kafka", "crypto_prices"]) in aggregates.parent_keys
    assert defs.resolve_job_def("aggregate_prices") is not None


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
