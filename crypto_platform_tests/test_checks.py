"""Each check fails on bad data planted straight into the stores, and passes without it."""

from __future__ import annotations

import datetime as dt
import json
import time

import dagster as dg
from pymongo import MongoClient

from crypto_platform.defs.checks.engine import ENGINE_CHECKS
from crypto_platform.defs.streams.assets import MONGO_PRICES
from crypto_platform.reports import checks
from crypto_platform.reports.statistics import Period
from crypto_platform.reports.stores import open_stores
from crypto_platform.settings import Settings
from crypto_platform.storage import cassandra
from crypto_platform.ticks import Tick
from crypto_platform_tests.conftest import run_cli
from crypto_platform_tests.report_helpers import hour_start
from crypto_platform_tests.test_reports import resources


def insert_ticks(settings: Settings, ticks: list[Tick]) -> None:
    with MongoClient(settings.mongo_uri) as client:
        collection = client[settings.mongo_database][settings.mongo_collection]
        collection.insert_many([tick.to_document() for tick in ticks])


def fresh_ticks(symbols: list[str]) -> list[Tick]:
    now = int(time.time() * 1000)
    return [
        Tick.build(source="simulated", symbol=s, price=100.0, event_time_ms=now, ingest_time_ms=now)
        for s in symbols
    ]


def run_check(check: dg.AssetChecksDefinition, settings: Settings) -> dg.AssetCheckEvaluation:
    """Run one Dagster asset check, as the UI or `dg launch` would.

    An engine check blocks nothing (it runs alone: see defs/checks/engine.py), so its run
    succeeds whatever it finds.
    """
    result = dg.materialize(
        [check],
        resources=resources(settings),
        selection=dg.AssetSelection.checks(check),
        raise_on_error=False,
    )
    (evaluation,) = result.get_asset_check_evaluations()
    assert result.success
    return evaluation


def named(definitions: list[dg.AssetChecksDefinition], asset: str, name: str):
    key = dg.AssetCheckKey(dg.AssetKey(asset.split("/")), name)
    return next(d for d in definitions if key in d.check_keys)


def test_check_command_exits_1_after_a_zero_price_is_written_into_mongodb(
    settings: Settings,
) -> None:
    insert_ticks(settings, fresh_ticks(settings.symbols))
    before = run_cli(settings, "check")
    assert before.returncode == 0, before.stdout + before.stderr

    now = int(time.time() * 1000)
    with MongoClient(settings.mongo_uri) as client:
        client[settings.mongo_database][settings.mongo_collection].insert_one(
            {"_id": "planted", "symbol": "BTC", "price": 0.0,
             "event_time_ms": now, "ingest_time_ms": now}
        )  # fmt: skip
    after = run_cli(settings, "check")

    assert after.returncode == 1, after.stdout + after.stderr
    report = json.loads(after.stdout)
    failed = [(c["asset"], c["check"]) for c in report["checks"] if not c["passed"]]
    assert failed == [("mongo/prices", "positive_prices")]
    assert "planted=0.0" in report["checks"][1]["metadata"]["examples"]


def test_dagster_positive_price_check_fails_on_a_zero_price(
    settings: Settings,
) -> None:
    check = named(ENGINE_CHECKS, "mongo/prices", "positive_prices")
    insert_ticks(settings, fresh_ticks(["BTC"]))
    assert run_check(check, settings).passed

    with MongoClient(settings.mongo_uri) as client:
        client[settings.mongo_database][settings.mongo_collection].insert_one(
            {"_id": "nan", "symbol": "ETH", "price": float("nan"), "event_time_ms": 1,
             "ingest_time_ms": int(time.time() * 1000)}
        )  # fmt: skip
    evaluation = run_check(check, settings)

    assert not evaluation.passed
    assert evaluation.severity == dg.AssetCheckSeverity.ERROR
    assert evaluation.metadata["bad_prices"].value == 1
    assert next(iter(check.check_specs)).asset_key == MONGO_PRICES


def insert_aggregate(
    settings: Settings, start: dt.datetime, am: float, gm: float, hm: float
) -> None:
    """One 5-minute window of BTC from Binance, and the same window as its latest."""
    columns = ("symbol, source, window_seconds, window_start, window_end, arithmetic_mean, "
               "geometric_mean, harmonic_mean, tick_count, min_price, max_price")  # fmt: skip
    values = ("BTC", "binance", 300, start, start + dt.timedelta(minutes=5), am, gm, hm, 3,
              90.0, 110.0)  # fmt: skip
    cluster, session = cassandra.connect(settings)
    try:
        keyspace = settings.cassandra_keyspace
        session.execute(
            f"INSERT INTO {keyspace}.aggregates_by_symbol ({columns}, day) "
            f"VALUES ({', '.join(['%s'] * 12)})",
            (*values, start.strftime("%Y-%m-%d")),
        )
        session.execute(
            f"INSERT INTO {keyspace}.latest_aggregates ({columns}) "
            f"VALUES ({', '.join(['%s'] * 11)})",
            values,
        )
    finally:
        cluster.shutdown()


def recent_window() -> dt.datetime:
    """The start of a 5-minute window that began within the last 10 minutes."""
    now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    return now - dt.timedelta(minutes=now.minute % 5 + 5)


def test_means_check_fails_on_an_aggregate_row_with_am_below_hm(settings: Settings) -> None:
    check = named(ENGINE_CHECKS, "cassandra/aggregates_by_symbol", "means_ordered")
    start = recent_window()
    insert_aggregate(settings, start, am=100.0, gm=99.9, hm=99.8)
    assert run_check(check, settings).passed

    insert_aggregate(settings, start, am=99.0, gm=99.5, hm=100.0)  # the same row, now AM < HM
    evaluation = run_check(check, settings)

    assert not evaluation.passed
    assert evaluation.metadata["bad_rows"].value == 2  # the window and the latest row
    assert (
        f"aggregates_by_symbol BTC (binance) {start:%Y-%m-%d %H:%M}"
        in evaluation.metadata["examples"].value
    )


def test_means_check_reads_the_last_two_hours_days_only(settings: Settings) -> None:
    """A wrong window of three days ago was checked then; today's reads leave it alone."""
    insert_aggregate(settings, recent_window() - dt.timedelta(days=3), am=99.0, gm=99.5, hm=100.0)
    insert_aggregate(settings, recent_window(), am=100.0, gm=99.9, hm=99.8)
    with open_stores(settings) as stores:
        outcome = checks.aggregates_ordered(stores)

    assert outcome.passed, outcome.description
    assert outcome.metadata["rows"] == 2  # today's window and the latest row


def test_positive_price_check_reads_the_ticks_ingested_in_the_last_two_hours(
    settings: Settings,
) -> None:
    now = int(time.time() * 1000)
    old = now - 3 * 3_600_000
    with MongoClient(settings.mongo_uri) as client:
        prices = client[settings.mongo_database][settings.mongo_collection]
        prices.insert_one({"_id": "old", "symbol": "BTC", "price": -1.0,
                           "event_time_ms": old, "ingest_time_ms": old})  # fmt: skip
        with open_stores(settings) as stores:
            before = checks.mongo_positive_prices(stores)
            prices.insert_one({"_id": "new", "symbol": "BTC", "price": -1.0,
                               "event_time_ms": old, "ingest_time_ms": now})  # fmt: skip
            after = checks.mongo_positive_prices(stores)

    assert before.passed  # ingested 3 hours ago: looked at by the runs of that time
    assert not after.passed and after.metadata["examples"] == "new=-1.0"


def test_agreement_check_fails_on_an_hour_missing_in_cassandra(settings: Settings) -> None:
    hour = hour_start(1)
    start_ms = int(hour.timestamp() * 1000)
    ticks = [
        Tick.build(source="simulated", symbol="BTC", price=100.0 + i,
                   event_time_ms=start_ms + i * 60_000, ingest_time_ms=start_ms + i * 60_000)
        for i in range(5)
    ]  # fmt: skip
    insert_ticks(settings, ticks)
    with open_stores(settings) as stores:
        outcome = checks.mongo_cassandra_agree(stores, Period.hour(hour))
        empty_hour = checks.mongo_cassandra_agree(stores, Period.hour(hour_start(3)))

    assert not outcome.passed
    assert (outcome.metadata["mongodb_BTC"], outcome.metadata["cassandra_BTC"]) == (5, 0)
    assert empty_hour.passed


def test_cassandra_price_check_fails_on_a_negative_price(settings: Settings) -> None:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    cluster, session = cassandra.connect(settings)
    try:
        for symbol, price in (("BTC", 100.0), ("ETH", -1.0)):
            session.execute(
                f"INSERT INTO {settings.cassandra_keyspace}.prices_by_symbol "
                "(symbol, day, event_time, source, price) VALUES (%s, %s, %s, %s, %s)",
                (symbol, now.strftime("%Y-%m-%d"), now, "simulated", price),
            )
    finally:
        cluster.shutdown()
    with open_stores(settings) as stores:
        outcome = checks.cassandra_positive_prices(stores)

    assert not outcome.passed
    assert outcome.metadata["rows_scanned"] == 2
    assert outcome.metadata["examples"].startswith("ETH@")


def test_dlq_growth_warns_above_the_setting(settings: Settings) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
    for _ in range(3):
        producer.send(settings.kafka_dlq_topic, b"dead")
    producer.flush()
    producer.close()
    strict = settings.model_copy(update={"check_dlq_max_per_hour": 3})
    with open_stores(strict) as stores:
        outcome = checks.dlq_growth(stores)
    severity = next(c.severity for c in checks.CHECKS if c.name == "dlq_growth")

    assert not outcome.passed and severity == "WARN"
    assert outcome.metadata["dead_letters_last_hour"] == 3


def test_check_command_names_the_store_that_is_down_without_a_traceback(
    settings: Settings,
) -> None:
    down = settings.model_copy(update={"mongo_uri": "mongodb://127.0.0.1:9/"})
    result = run_cli(down, "check")

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "MongoDB at mongodb://127.0.0.1:9/ is not reachable" in result.stderr
    assert "CRYPTO_MONGO_URI" in result.stderr
