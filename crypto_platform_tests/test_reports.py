"""Reports and checks on the test stack, with a known tick set through the real pipeline.

The ticks go producer -> Kafka -> MongoDB sink and Spark -> Cassandra; the assets are
materialised with `dg.materialize`, and every figure is compared with an independent
computation in plain Python.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
from kafka import KafkaProducer
from pymongo import MongoClient
from pyspark.sql import SparkSession

from crypto_platform.defs.reports.assets import storage_growth_report, throughput_report_asset
from crypto_platform.defs.resources.clients import CassandraResource, KafkaResource, MongoResource
from crypto_platform.defs.statistics.assets import price_jumps, price_statistics, volatility
from crypto_platform.reports import checks, nodetool
from crypto_platform.reports.statistics import Period
from crypto_platform.reports.storage import storage_report
from crypto_platform.reports.stores import open_stores
from crypto_platform.reports.throughput import throughput_report
from crypto_platform.settings import Settings
from crypto_platform.spark.job import run_aggregation
from crypto_platform.stack import LocalStack
from crypto_platform.stack.cassandra_server import CassandraServer
from crypto_platform.stack.mongo_server import MongoServer
from crypto_platform.storage import mongo_queries
from crypto_platform.ticks import Tick
from crypto_platform_tests.conftest import REPO, isolated_settings, run_cli
from crypto_platform_tests.report_helpers import (
    BTC_TICKS,
    ETH_TICKS,
    JUMPS,
    STEP_MS,
    by_symbol,
    hour_start,
    planted_ticks,
    reference_statistics,
    reference_volatility,
)
from crypto_platform_tests.spark_helpers import publish
from crypto_platform_tests.streaming_helpers import sink_until_idle


@dataclass(frozen=True)
class Planted:
    settings: Settings
    hour: dt.datetime
    ticks: list[Tick]
    other_hour_ticks: list[Tick]


@pytest.fixture(scope="module")
def planted(
    stack: LocalStack, spark: SparkSession, tmp_path_factory: pytest.TempPathFactory
) -> Planted:
    """The known ticks (and one malformed message) through the whole pipeline."""
    settings = isolated_settings(
        stack,
        spark_checkpoint_dir=tmp_path_factory.mktemp("checkpoints"),
        check_tick_max_age_s=4 * 3600.0,
    )
    hour = hour_start(1)
    ticks = planted_ticks(hour)
    other = [
        Tick.build(source="simulated", symbol="BTC", price=10.0 + i,
                   event_time_ms=int(hour_start(2).timestamp() * 1000) + i * 1000,
                   ingest_time_ms=ticks[0].ingest_time_ms)
        for i in range(4)
    ]  # fmt: skip
    publish(settings, ticks + other)
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
    producer.send(settings.kafka_topic, b"{not a tick", key=b"BTC").get(timeout=30)
    producer.close()
    stats = sink_until_idle(settings, 3)
    assert (stats.inserted, stats.dead_lettered) == (len(ticks) + len(other), 1)
    run_aggregation(spark, settings, threading.Event(), available_now=True)
    return Planted(settings, hour, ticks, other)


def resources(settings: Settings) -> dict[str, object]:
    return {
        "kafka": KafkaResource(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            topic=settings.kafka_topic,
            dlq_topic=settings.kafka_dlq_topic,
            consumer_group=settings.kafka_consumer_group,
        ),
        "mongo": MongoResource(
            uri=settings.mongo_uri,
            database=settings.mongo_database,
            collection=settings.mongo_collection,
        ),
        "cassandra": CassandraResource(
            hosts=",".join(settings.cassandra_hosts),  # comma-separated, as its variable
            port=settings.cassandra_port,
            keyspace=settings.cassandra_keyspace,
            jmx_port=settings.cassandra_jmx_port,
        ),
    }


def partition(hour: dt.datetime) -> str:
    return hour.strftime("%Y-%m-%d-%H:%M")


def materialize(asset: dg.AssetsDefinition, planted: Planted, hour: dt.datetime, **config: object):
    run_config = {"ops": {asset.op.name: {"config": config}}} if config else None
    result = dg.materialize(
        [asset],
        partition_key=partition(hour),
        resources=resources(planted.settings),
        run_config=run_config,
    )
    assert result.success
    return result.asset_materializations_for_node(asset.op.name)[0].metadata


def test_price_statistics_per_coin_are_exact(planted: Planted) -> None:
    with open_stores(planted.settings) as stores:
        from crypto_platform.reports.statistics import price_statistics as compute

        rows = {row["symbol"]: row for row in compute(stores, Period.hour(planted.hour))}
    expected = reference_statistics(planted.ticks)

    assert set(rows) == {"BTC", "ETH", "SOL"}
    for symbol, want in expected.items():
        assert rows[symbol]["count"] == want["count"]
        for field in ("open", "high", "low", "close"):
            assert rows[symbol][field] == want[field], (symbol, field)
        for field in ("mean", "stddev", "change_pct"):
            assert math.isclose(rows[symbol][field], want[field], rel_tol=1e-9), (symbol, field)


def test_price_statistics_asset_materialises_its_hour_only(planted: Planted) -> None:
    metadata = materialize(price_statistics, planted, planted.hour)
    other = materialize(price_statistics, planted, hour_start(2))

    assert metadata["ticks"].value == BTC_TICKS + ETH_TICKS + 3
    assert metadata["count_BTC"].value == BTC_TICKS
    counts = {row.data["symbol"]: row.data["count"] for row in metadata["statistics"].value.records}
    assert counts["BTC"] == BTC_TICKS
    assert other["ticks"].value == len(planted.other_hour_ticks)


def test_price_jumps_are_found_exactly_where_planted(planted: Planted) -> None:
    metadata = materialize(price_jumps, planted, planted.hour)
    with open_stores(planted.settings) as stores:
        from crypto_platform.reports.statistics import price_jumps as compute

        rows = compute(stores, Period.hour(planted.hour), 1.0)
        wider = compute(stores, Period.hour(planted.hour), 0.4)

    btc = by_symbol(planted.ticks)["BTC"]
    assert [(r["symbol"], r["to_time_ms"]) for r in rows] == [
        ("BTC", btc[i].event_time_ms) for (_, i) in sorted(JUMPS)
    ]
    for row, ((_, i), move) in zip(rows, sorted(JUMPS.items()), strict=True):
        assert math.isclose(row["move_pct"], move, rel_tol=1e-9)
        assert row["from_time_ms"] == btc[i - 1].event_time_ms
    assert metadata["jumps"].value == 2
    # ETH moves ±0.5 % every tick: above 0.4 % they are all jumps, as are SOL's.
    assert len(wider) == 2 + (ETH_TICKS - 1) + 1 + 1


def test_volatility_equals_an_independent_computation(planted: Planted) -> None:
    metadata = materialize(volatility, planted, planted.hour, window=10)
    with open_stores(planted.settings) as stores:
        from crypto_platform.reports.statistics import volatility as compute

        rows = {r["symbol"]: r for r in compute(stores, Period.hour(planted.hour), 10)}
    expected = reference_volatility(planted.ticks, 10)

    for symbol, want in expected.items():
        assert rows[symbol]["returns"] == want["returns"]
        for field in ("latest", "peak"):
            if want[field] is None:
                assert rows[symbol][field] is None
            else:
                assert math.isclose(rows[symbol][field], want[field], rel_tol=1e-9, abs_tol=1e-15)
    assert math.isclose(metadata["latest_BTC"].value, expected["BTC"]["latest"], rel_tol=1e-9)


def du_bytes(path: Path) -> int:
    out = subprocess.run(["du", "-s", "-B1", str(path)], capture_output=True, text=True)
    return int(out.stdout.split()[0])


def sstable_bytes(settings: Settings, table: str) -> int:
    """The sizes of a table's SSTable files, read in its data directory."""
    keyspace_dir = CassandraServer(settings).data_path / "data" / settings.cassandra_keyspace
    return sum(
        file.stat().st_size
        for directory in keyspace_dir.glob(f"{table}-*")
        for file in directory.iterdir()
        if file.is_file()
    )


def flushed(settings: Settings) -> Settings:
    """The settings, once Cassandra has flushed their keyspace's memtables to SSTables."""
    nodetool.run(settings, "flush", settings.cassandra_keyspace)
    return settings


def test_storage_report_agrees_with_direct_counts_and_du(planted: Planted) -> None:
    settings = flushed(planted.settings)
    result = run_cli(settings, "report", "storage")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)

    stored = len(planted.ticks) + len(planted.other_hour_ticks)
    mongodb, cassandra_part = report["mongodb"], report["cassandra"]
    assert mongodb["documents"] == report["ticks"] == stored
    assert mongodb["server_statistics"] == "collStats"
    assert cassandra_part["source"] == "jmx"  # the local 2.1.0 has no system.size_estimates
    for table, figures in cassandra_part["tables"].items():
        assert figures["sstable_bytes"] == pytest.approx(sstable_bytes(settings, table), rel=0.10)
    assert cassandra_part["tables"]["prices_by_symbol"]["sstable_bytes"] > 0
    mongo_dir = MongoServer(settings).data_path
    keyspace_dir = CassandraServer(settings).data_path / "data" / settings.cassandra_keyspace
    for reported, path in (
        (mongodb["data_dir_bytes_on_disk"], mongo_dir),
        (cassandra_part["keyspace_bytes_on_disk"], keyspace_dir),
    ):
        assert reported == pytest.approx(du_bytes(path), rel=0.10), path
    assert mongodb["on_disk_bytes"] == mongodb["data_dir_bytes_on_disk"]
    assert report["ingest_rate_per_hour"] == stored
    assert report["bytes_per_tick"]["on_disk"] == pytest.approx(
        report["total_bytes"] / stored, abs=0.1
    )
    assert report["data_bytes"] >= report["mongodb"]["data_size_bytes"] > 0


def test_storage_report_takes_real_figures_from_servers_whose_directories_it_cannot_see(
    planted: Planted, tmp_path: Path
) -> None:
    """As in the Docker deployment: no data directory here, every figure from the servers."""
    elsewhere = flushed(planted.settings).model_copy(update={"data_dir": tmp_path})
    with open_stores(elsewhere) as stores:
        report = storage_report(stores)

    mongodb, cassandra_part = report["mongodb"], report["cassandra"]
    assert mongodb["data_dir_bytes_on_disk"] is None
    assert cassandra_part["keyspace_bytes_on_disk"] is None
    assert mongodb["documents"] == len(planted.ticks) + len(planted.other_hour_ticks)
    assert mongodb["on_disk_bytes"] == mongodb["storage_size_bytes"] + mongodb["index_size_bytes"]
    assert mongodb["storage_size_bytes"] > 0 and mongodb["index_size_bytes"] > 0
    prices = cassandra_part["tables"]["prices_by_symbol"]["sstable_bytes"]
    assert prices == pytest.approx(sstable_bytes(planted.settings, "prices_by_symbol"), rel=0.10)
    assert cassandra_part["on_disk_bytes"] == cassandra_part["sstable_bytes"] >= prices > 0
    assert report["total_bytes"] == mongodb["on_disk_bytes"] + cassandra_part["on_disk_bytes"]
    assert report["bytes_per_tick"]["on_disk"] > 0 and report["bytes_per_tick"]["data"] > 0


CFSTATS_2_1_0 = """Keyspace: crypto
\tRead Count: 0
\tRead Latency: NaN ms.
\tWrite Count: 200
\tWrite Latency: 0.061 ms.
\tPending Flushes: 0
\t\tTable: latest_prices
\t\tSSTable count: 0
\t\tSpace used (live), bytes: 0
\t\tSpace used (total), bytes: 0
\t\tMemtable cell count: 30
\t\tMemtable data size, bytes: 1234
\t\tCompacted partition mean bytes: 0
\t\tTable: prices_by_symbol
\t\tSSTable count: 2
\t\tSpace used (live), bytes: 9876
\t\tSpace used (total), bytes: 9999
\t\tSSTable Compression Ratio: 0.41
\t\tMemtable data size, bytes: 0
\t\tLocal read latency: NaN ms
\t\tCompacted partition mean bytes: 4768
----------------
"""
CFSTATS_4 = """Keyspace : crypto
\t\tTable: prices_by_symbol
\t\tSSTable count: 1
\t\tSpace used (live): 5120
\t\tSpace used (total): 5120
\t\tNumber of partitions (estimate): 6
\t\tMemtable data size: 77
"""


def test_cfstats_output_of_2_1_and_later_releases_is_read() -> None:
    assert nodetool.parse_cfstats(CFSTATS_2_1_0) == {
        "latest_prices": {"sstable_bytes": 0, "memtable_bytes": 1234},
        "prices_by_symbol": {"sstable_bytes": 9876, "memtable_bytes": 0},
    }
    assert nodetool.parse_cfstats(CFSTATS_4) == {
        "prices_by_symbol": {"sstable_bytes": 5120, "partitions": 6, "memtable_bytes": 77}
    }


def test_storage_asset_measures_growth_between_materialisations(planted: Planted) -> None:
    with dg.instance_for_test() as instance:
        for _ in range(2):
            result = dg.materialize(
                [storage_growth_report], instance=instance, resources=resources(planted.settings)
            )
            assert result.success
        metadata = result.asset_materializations_for_node(storage_growth_report.op.name)[0].metadata

    assert metadata["mongodb.documents"].value == len(planted.ticks) + 4
    assert "growth.seconds" in metadata
    projection = {row.data["basis"]: row.data for row in metadata["projection"].value.records}
    assert projection["seed 004 arithmetic at the same rate"]["per_month"] > 0


def test_throughput_report_counts_and_latencies(planted: Planted) -> None:
    settings = planted.settings
    with open_stores(settings) as stores:
        report = throughput_report(stores, latency_window_s=4 * 3600)
    stored = len(planted.ticks) + len(planted.other_hour_ticks)

    assert report["ticks"]["kafka"]["total"] == stored + 1
    assert report["ticks"]["kafka"]["per_day"] == stored + 1
    assert report["ticks"]["mongodb"]["per_day"] == stored
    # Cassandra counts by event time: the planted ticks are from the last two hours.
    assert report["ticks"]["cassandra"]["per_day"] == stored
    assert report["consumer_lag"] == 0
    assert report["dead_letters"] == 1
    mongo_latency = report["latency_ms"]["ingest_to_mongodb_handover"]
    assert report["latency_ms"]["mongodb_time"].startswith("handed_at_ms")
    cassandra_latency = report["latency_ms"]["ingest_to_cassandra"]
    assert mongo_latency["samples"] == stored and cassandra_latency["samples"] == stored
    assert 0 <= mongo_latency["p50"] <= mongo_latency["p95"] <= mongo_latency["p99"]
    assert 0 <= cassandra_latency["p50"] <= cassandra_latency["p99"]
    assert report["spark"]["ticks"]["batches"] >= 1
    assert report["spark"]["ticks"]["duration_s"]["p50"] > 0

    metadata = materialize_unpartitioned(throughput_report_asset, planted)
    assert metadata["dead_letters"].value == 1
    paths = {row.data["path"] for row in metadata["latency_ms"].value.records}
    assert "ingest_to_mongodb_handover" in paths


def test_the_mongodb_latency_reads_the_handover_time_under_either_name(
    settings: Settings,
) -> None:
    """`handed_at_ms` since it was named for what it is; older documents: `stored_at_ms`."""
    with MongoClient(settings.mongo_uri) as client:
        prices = client[settings.mongo_database][settings.mongo_collection]
        prices.insert_many(
            [
                {"_id": "new", "ingest_time_ms": 1_000, "handed_at_ms": 1_250},
                {"_id": "old", "ingest_time_ms": 2_000, "stored_at_ms": 2_400},
                {"_id": "unstamped", "ingest_time_ms": 3_000},
            ]
        )

        latencies = mongo_queries.handover_latencies_ms(prices, 0, 10)

    assert sorted(latencies) == [250, 400]


def materialize_unpartitioned(asset: dg.AssetsDefinition, planted: Planted):
    result = dg.materialize([asset], resources=resources(planted.settings))
    assert result.success
    return result.asset_materializations_for_node(asset.op.name)[0].metadata


def test_every_check_passes_on_the_good_data(planted: Planted) -> None:
    with open_stores(planted.settings) as stores:
        results = checks.run_checks(stores)
        agree = checks.mongo_cassandra_agree(stores, Period.hour(planted.hour))

    assert [r for r in results if not r["passed"]] == []
    assert agree.passed, agree.description
    assert agree.metadata["mongodb_BTC"] == agree.metadata["cassandra_BTC"] == BTC_TICKS
    completeness = next(r for r in results if r["check"] == "kafka_completeness")
    assert completeness["metadata"]["in_flight"] == 0
    assert completeness["metadata"]["dead_letters"] == 1


def test_freshness_fails_when_ticks_are_older_than_the_setting(planted: Planted) -> None:
    settings = planted.settings.model_copy(update={"check_tick_max_age_s": 1.0})
    with open_stores(settings) as stores:
        outcome = checks.tick_freshness(stores)

    assert not outcome.passed
    assert outcome.metadata["stale"] == "BTC, ETH, SOL"
    assert STEP_MS  # the ticks are at least a few minutes old by construction


def test_report_statistics_command_prints_the_hour_as_json(planted: Planted) -> None:
    result = run_cli(
        planted.settings, "report", "statistics", "--hour", planted.hour.strftime("%Y-%m-%dT%H")
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)

    assert report["period"]["start"] == planted.hour.isoformat()
    assert {row["symbol"]: row["count"] for row in report["statistics"]} == {
        "BTC": BTC_TICKS, "ETH": ETH_TICKS, "SOL": 3
    }  # fmt: skip
    assert len(report["jumps"]["rows"]) == len(JUMPS)


def test_dg_launch_materialises_a_statistics_partition(planted: Planted, tmp_path: Path) -> None:
    venv_bin = Path(sys.executable).parent
    env = {
        **os.environ,
        **planted.settings.as_env(),
        "DAGSTER_HOME": str(tmp_path),
        "VIRTUAL_ENV": str(venv_bin.parent),
        "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    result = subprocess.run(
        [str(venv_bin / "dg"), "launch", "--assets", "statistics/price_statistics",
         "--partition", partition(planted.hour)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip

    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "RUN_SUCCESS" in result.stdout + result.stderr
