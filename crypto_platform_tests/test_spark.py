"""The Spark job through Kafka and Cassandra: exact means, restarts, failures, late data."""

from __future__ import annotations

import json
import math
import random
import threading
import uuid
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as examples
from hypothesis import strategies as st
from kafka import KafkaProducer
from pyspark.sql import SparkSession

from crypto_platform.defs.analytics.assets import CASSANDRA_AGGREGATES_BY_SYMBOL, spark_aggregation
from crypto_platform.settings import Settings
from crypto_platform.spark.cassandra_writer import CassandraTarget, write_rows
from crypto_platform.spark.job import AggregationFailed, run_aggregation
from crypto_platform.spark.kafka_source import SOURCE_NAME
from crypto_platform.spark.windowed_means import STATE_BUCKETS
from crypto_platform.stack import LocalStack
from crypto_platform.storage import cassandra
from crypto_platform.streaming.dead_letters import ORIGIN_OFFSET, REASON
from crypto_platform.streaming.producer import DeliveryFailed, TickProducer
from crypto_platform.ticks import Tick
from crypto_platform_tests.conftest import isolated_settings, run_cli
from crypto_platform_tests.spark_helpers import (
    T0_MS,
    aggregation_resources,
    assert_matches,
    count_rows,
    deterministic_ticks,
    publish,
    reference_candles,
    reference_windows,
    stored_candles,
    stored_windows,
)
from crypto_platform_tests.streaming_helpers import (
    create_topic_with_max_message_bytes,
    read_topic,
    sink_until_idle,
    stored_ids,
)
from crypto_platform_tests.tick_strategies import message_values


@pytest.fixture
def spark_settings(settings: Settings, tmp_path: Path) -> Settings:
    return settings.model_copy(update={"spark_checkpoint_dir": tmp_path / "checkpoints"})


def catch_up(spark: SparkSession, settings: Settings):
    return run_aggregation(spark, settings, threading.Event(), available_now=True)


def catch_up_reporting(spark: SparkSession, settings: Settings, report):
    """A catch-up that reports a snapshot after every poll of its progress."""
    return run_aggregation(
        spark, settings, threading.Event(), available_now=True, report=report, report_every=0
    )


def test_every_window_matches_an_independent_computation(
    spark: SparkSession, spark_settings: Settings
) -> None:
    ticks = deterministic_ticks(150)
    publish(spark_settings, ticks)

    totals = catch_up(spark, spark_settings)

    assert totals.input_rows == 450
    stored = stored_windows(spark_settings, ticks)
    assert_matches(stored, reference_windows(ticks))
    for row in stored.values():
        am, gm, hm = row["arithmetic_mean"], row["geometric_mean"], row["harmonic_mean"]
        assert am >= gm * (1 - 1e-12) and gm >= hm * (1 - 1e-12)
    assert count_rows(spark_settings, "prices_by_symbol") == 450
    assert count_rows(spark_settings, "latest_prices") == 3
    assert count_rows(spark_settings, "latest_aggregates") == 3
    # The same pass built every candle: 17.5 minutes of ticks, at 1m, 5m, 1h and 1d.
    assert stored_candles(spark_settings, ticks) == reference_candles(ticks)
    assert totals.candles_written >= len(reference_candles(ticks))


def test_a_window_never_mixes_sources(spark: SparkSession, spark_settings: Settings) -> None:
    # The same coins at the same moments from two sources, a thousandth apart in price (as
    # Binance's USDT and Coinranking's USD quotes are): each source has windows of its own.
    simulated = deterministic_ticks(40)
    binance = deterministic_ticks(40, seed=4, source="binance")
    ticks = simulated + binance
    publish(spark_settings, ticks)

    catch_up(spark, spark_settings)

    stored = stored_windows(spark_settings, ticks)
    assert {source for _, source, _ in stored} == {"simulated", "binance"}
    assert_matches(stored, reference_windows(ticks))
    assert count_rows(spark_settings, "latest_aggregates") == 6  # 3 coins, 2 sources


def test_restart_from_the_checkpoint_reads_nothing_twice_and_misses_nothing(
    spark: SparkSession, spark_settings: Settings
) -> None:
    ticks = sorted(deterministic_ticks(120), key=lambda tick: tick.event_time_ms)
    first, second = ticks[:200], ticks[200:]  # the stream goes on in time
    publish(spark_settings, first)
    assert catch_up(spark, spark_settings).input_rows == len(first)

    publish(spark_settings, second)
    again = catch_up(spark, spark_settings)

    assert again.input_rows == len(second)
    assert_matches(stored_windows(spark_settings, ticks), reference_windows(ticks))
    # Candles open at the restart (the hour's, the day's) carry on from the checkpoint.
    assert stored_candles(spark_settings, ticks) == reference_candles(ticks)
    assert count_rows(spark_settings, "prices_by_symbol") == len(ticks)


def test_a_replayed_tick_is_counted_once(spark: SparkSession, spark_settings: Settings) -> None:
    ticks = deterministic_ticks(40)
    publish(spark_settings, ticks + ticks[:10])  # a copy in the same batch
    catch_up(spark, spark_settings)
    publish(spark_settings, ticks[100:110])  # and in a later run, from the checkpoint's state

    again = catch_up(spark, spark_settings)

    assert again.input_rows == 10 and again.ticks_written == 0
    assert_matches(stored_windows(spark_settings, ticks), reference_windows(ticks))


def test_cassandra_down_fails_clearly_and_a_restart_resumes_without_loss(
    spark: SparkSession, spark_settings: Settings, stack: LocalStack
) -> None:
    ticks = deterministic_ticks(60)
    publish(spark_settings, ticks)
    node = next(server for server in stack.servers if server.name == "cassandra")

    node.process.stop()
    try:
        with pytest.raises(AggregationFailed, match="Cassandra is not reachable"):
            catch_up(spark, spark_settings)
    finally:
        stack.up()

    catch_up(spark, spark_settings)
    assert_matches(stored_windows(spark_settings, ticks), reference_windows(ticks))
    assert count_rows(spark_settings, "prices_by_symbol") == len(ticks)


def test_late_ticks_count_within_the_watermark_and_are_dropped_beyond_it(
    spark: SparkSession, spark_settings: Settings
) -> None:
    on_time = sorted(deterministic_ticks(200), key=lambda tick: tick.event_time_ms)
    # Two runs: a batch's watermark is the previous batch's newest event time minus 10 min
    # (no empty batch is run only to move it), so the second run's ends ~100 s past T0.
    first = []
    for part in (on_time[:300], on_time[300:]):
        publish(spark_settings, part)
        catch_up_reporting(spark, spark_settings, first.append)
    assert first[-1]["watermark_epoch_s"] * 1000 > T0_MS + 60_000
    late = deterministic_ticks(1, start_ms=T0_MS + 30_000, seed=99)  # its windows expired
    within = deterministic_ticks(1, start_ms=T0_MS + 1_000_000, seed=98)  # still open

    publish(spark_settings, late + within)
    snapshots = []
    totals = catch_up_reporting(spark, spark_settings, snapshots.append)

    assert totals.dropped_late_rows == 3 and totals.ticks_written == 3
    assert_matches(stored_windows(spark_settings, on_time), reference_windows(on_time + within))
    assert count_rows(spark_settings, "prices_by_symbol") == len(on_time) + 3
    # Expired windows left the state: what remains is bounded by the watermark, not the input.
    assert 0 < snapshots[-1]["state_rows"] < len(on_time)


def test_max_offsets_per_trigger_splits_the_catch_up(
    spark: SparkSession, spark_settings: Settings
) -> None:
    ticks = deterministic_ticks(100)
    publish(spark_settings, ticks)
    limited = spark_settings.model_copy(update={"spark_max_offsets_per_trigger": 50})

    totals = catch_up(spark, limited)

    assert totals.input_rows == 300
    assert totals.batches >= 6


def test_coins_sharing_a_state_bucket_each_get_exact_windows_across_batches(
    spark: SparkSession, spark_settings: Settings
) -> None:
    # More coins than state buckets, so buckets hold several coins; published out of event
    # order and read in small batches, so a bucket's windows are merged again and again.
    coins = tuple((f"C{index:03d}", 10.0 + index) for index in range(3 * STATE_BUCKETS))
    ticks = deterministic_ticks(12, coins=coins)
    random.Random(5).shuffle(ticks)
    publish(spark_settings, ticks)
    limited = spark_settings.model_copy(update={"spark_max_offsets_per_trigger": 97})

    totals = catch_up(spark, limited)

    assert totals.batches >= 5
    assert_matches(stored_windows(spark_settings, ticks), reference_windows(ticks))
    assert count_rows(spark_settings, "latest_aggregates") == len(coins)
    assert stored_candles(spark_settings, ticks) == reference_candles(ticks)


def test_the_asset_job_materialises_the_aggregates(
    spark: SparkSession, spark_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRYPTO_SPARK_CHECKPOINT_DIR", str(spark_settings.spark_checkpoint_dir))
    ticks = deterministic_ticks(30)
    publish(spark_settings, ticks)
    s = spark_settings

    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [spark_aggregation],
            instance=instance,
            resources=aggregation_resources(s),
            run_config=dg.RunConfig(ops={"spark_aggregation": {"config": {"available_now": True}}}),
        )
        assert result.success
        event = instance.get_latest_materialization_event(CASSANDRA_AGGREGATES_BY_SYMBOL)
        assert event is not None
        metadata = event.asset_materialization.metadata
        assert metadata["rows"].value == 90 and metadata["mode"].value == "available-now"
    assert_matches(stored_windows(s, ticks), reference_windows(ticks))


VALID_TICK = {
    "schema_version": 1,
    "source": "binance",
    "symbol": "BTC",
    "price": 64000.5,
    "event_time_ms": T0_MS,
    "ingest_time_ms": T0_MS + 100,
}


def _tick_json(**change: object) -> bytes:
    fields = {key: value for key, value in {**VALID_TICK, **change}.items() if value != "-"}
    return json.dumps(fields).encode()


PARITY_CORPUS: dict[str, bytes | None] = {
    "valid": _tick_json(),
    "valid, string price": _tick_json(price="64000.5", event_time_ms=T0_MS + 1),
    "valid, optional fields": _tick_json(event_time_ms=T0_MS + 2, name="Bitcoin", uuid="u1"),
    "invalid UTF-8": b'{"schema_version":1,"source":"binance","symbol":"\xff\xfe"}',
    "not JSON": b"<html>502 Bad Gateway</html>",
    "a JSON array": b"[1, 2, 3]",
    "missing price": _tick_json(price="-"),
    "null price": _tick_json(price=None),
    "non-numeric string price": _tick_json(price="abc"),
    "NaN": _tick_json(price="-")[:-1] + b',"price":NaN}',
    "Infinity": _tick_json(price="-")[:-1] + b',"price":Infinity}',
    "zero price": _tick_json(price=0),
    "negative price": _tick_json(price=-3),
    "unknown source": _tick_json(source="nasdaq"),
    "unknown schema_version": _tick_json(schema_version=2),
    "symbol with a dash": _tick_json(symbol="BTC-USD"),
    "event time far in the future": _tick_json(event_time_ms=T0_MS + 3_600_000),
    "both times beyond year 9999": _tick_json(
        event_time_ms=259_999_999_999_999, ingest_time_ms=259_999_999_999_999
    ),
    "both times in year 2100": _tick_json(
        event_time_ms=4_102_444_800_000, ingest_time_ms=4_102_444_800_000
    ),
    "number_of_markets beyond 64 bits": _tick_json(number_of_markets=2**64),
    "price 1e308": _tick_json(price=1e308),
    "price 5e-324": _tick_json(price=5e-324),
    "a 300-character name": _tick_json(name="x" * 300),
    "valid, record timestamp in year 146 million": _tick_json(event_time_ms=T0_MS + 3),
    "tombstone": None,
    "empty value": b"",
}
# The Kafka timestamp a producer set on the record, where it is not the time of sending.
RECORD_TIMESTAMPS = {"valid, record timestamp in year 146 million": 2**62}


def spark_verdicts(spark: SparkSession, settings: Settings) -> dict[int, str | None]:
    """Each record's offset and why Spark's source refused it (None: a valid tick)."""
    seen: list[tuple[int, str | None]] = []
    query = (
        spark.readStream.format(SOURCE_NAME)
        .option("subscribe", settings.kafka_topic)
        .option("kafka.bootstrap.servers", settings.kafka_bootstrap_servers)
        .load()
        .writeStream.trigger(availableNow=True)
        .foreachBatch(
            lambda batch, _: seen.extend(
                (row.offset, row.invalid_reason) for row in batch.collect()
            )
        )
        .start()
    )
    query.awaitTermination()
    return dict(seen)


def sink_verdicts(settings: Settings) -> dict[int, str]:
    """Each dead letter's original offset and its reason."""
    return {
        int(dict(r.headers)[ORIGIN_OFFSET]): dict(r.headers)[REASON].decode()
        for r in read_topic(settings, settings.kafka_dlq_topic)
    }


def test_the_sink_and_spark_accept_and_reject_the_same_messages_for_the_same_reasons(
    spark: SparkSession, spark_settings: Settings
) -> None:
    producer = KafkaProducer(bootstrap_servers=spark_settings.kafka_bootstrap_servers)
    labels = {}
    for label, value in PARITY_CORPUS.items():
        metadata = producer.send(
            spark_settings.kafka_topic,
            key=b"BTC",
            value=value,
            partition=0,
            timestamp_ms=RECORD_TIMESTAMPS.get(label),
        ).get(30)
        labels[metadata.offset] = label
    producer.close()
    small = spark_settings.model_copy(update={"kafka_topic": f"{spark_settings.kafka_topic}.small"})
    create_topic_with_max_message_bytes(small, small.kafka_topic, 100)
    ticks = TickProducer(small)
    ticks.send(Tick.build(**VALID_TICK))  # over the topic's size limit
    with pytest.raises(DeliveryFailed, match="MessageSizeTooLarge"):
        ticks.flush()  # a clear error, counted
    assert ticks.stats.failed == 1
    with pytest.raises(DeliveryFailed):
        ticks.close()  # closing reports it again: never only logged

    sink_until_idle(spark_settings)
    dead = sink_verdicts(spark_settings)
    in_spark = spark_verdicts(spark, spark_settings)

    by_label = {labels[o]: (dead.get(o), in_spark[o]) for o in labels}
    for label, (sink_verdict, spark_verdict) in by_label.items():
        assert sink_verdict == spark_verdict, label
        assert (sink_verdict is None) == label.startswith("valid"), (label, sink_verdict)
    valid = sum(1 for label in PARITY_CORPUS if label.startswith("valid"))
    totals = catch_up(spark, spark_settings)
    assert totals.invalid_rows == len(PARITY_CORPUS) - valid
    assert count_rows(spark_settings, "prices_by_symbol") == valid


@examples(
    max_examples=3,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(values=st.lists(message_values, min_size=10, max_size=40))
def test_no_message_stops_the_sink_or_spark_and_both_decide_alike(
    spark: SparkSession, stack: LocalStack, tmp_path: Path, values: list[bytes]
) -> None:
    s = isolated_settings(stack, spark_checkpoint_dir=tmp_path / uuid.uuid4().hex)
    producer = KafkaProducer(bootstrap_servers=s.kafka_bootstrap_servers, acks="all")
    written = [
        producer.send(s.kafka_topic, key=b"K", value=value, partition=0).get(30) for value in values
    ]
    producer.close()

    sink_until_idle(s)  # returns: the sink did not stop on any of them
    totals = catch_up(spark, s)  # raises AggregationFailed if the query stopped

    dead = sink_verdicts(s)
    assert spark_verdicts(spark, s) == {m.offset: dead.get(m.offset) for m in written}
    identities = {
        Tick.from_json(value, written_ms=m.timestamp).identity
        for value, m in zip(values, written, strict=True)
        if m.offset not in dead
    }
    assert set(stored_ids(s)) == identities  # every message stored or dead-lettered
    assert totals.input_rows == len(values) and totals.invalid_rows == len(dead)
    assert count_rows(s, "prices_by_symbol") == len(identities)
    cluster, session = cassandra.connect(s)
    try:
        means = session.execute(
            "SELECT arithmetic_mean, geometric_mean, harmonic_mean "
            f"FROM {s.cassandra_keyspace}.aggregates_by_symbol"
        )
        for am, gm, hm in means:
            assert all(math.isfinite(mean) for mean in (am, gm, hm))
            assert am >= gm * (1 - 1e-12) and gm >= hm * (1 - 1e-12)
    finally:
        cluster.shutdown()


def _one_row(settings: Settings, query: str) -> Any:
    """The single row a query on the project's keyspace returns, read on a fresh session."""
    cluster, session = cassandra.connect(settings)
    try:
        return session.execute(query.format(keyspace=settings.cassandra_keyspace)).one()
    finally:
        cluster.shutdown()


def test_latest_aggregates_rows_are_whole_and_a_later_write_or_a_delete_wins(
    spark_settings: Settings,
) -> None:
    def version(count: int, am: float, gm: float) -> dict[str, list[object]]:
        window = {
            "symbol": "BTC", "source": "binance", "day": "2026-01-05", "window_start_ms": T0_MS,
            "window_end_ms": T0_MS + 300_000, "arithmetic_mean": am, "geometric_mean": gm,
            "harmonic_mean": gm - 1, "tick_count": count, "min_price": 1.0, "max_price": 2.0,
            "first_price": 1.0, "last_price": 2.0, "last_event_ms": T0_MS + 100_000,
        }  # fmt: skip
        return {column: [value] for column, value in window.items()}

    # Two versions of a window (a repair after the stream); each differs on every mean.
    stream, repaired = version(5, am=20.0, gm=10.0), version(6, am=19.0, gm=11.0)
    target = CassandraTarget.from_settings(spark_settings)
    query = "SELECT * FROM {keyspace}.latest_aggregates"
    for first, second, want in (
        (stream, repaired, (6, 19.0, 11.0)),
        (repaired, stream, (5, 20.0, 10.0)),
    ):
        write_rows(target, windows=first)
        write_rows(target, windows=second)

        row = _one_row(spark_settings, query)
        assert (row.tick_count, row.arithmetic_mean, row.geometric_mean) == want  # whole

    cluster, session = cassandra.connect(spark_settings)
    try:  # a DELETE as a cqlsh user writes it, then a write after it
        session.execute(f"DELETE FROM {spark_settings.cassandra_keyspace}.latest_aggregates "
                        "WHERE symbol = 'BTC' AND window_seconds = 300 "
                        "AND source = 'binance'")  # fmt: skip
        assert _one_row(spark_settings, query) is None
        write_rows(target, windows=repaired)
        assert _one_row(spark_settings, query).tick_count == 6
    finally:
        cluster.shutdown()


# How an earlier release created the windows' tables: keyed by coin alone.
UNSOURCED = (
    "CREATE TABLE {ks}.aggregates_by_symbol (symbol text, window_seconds int, day text, "
    "window_start timestamp, window_end timestamp, arithmetic_mean double, tick_count bigint, "
    "PRIMARY KEY ((symbol, window_seconds, day), window_start))",
    "CREATE TABLE {ks}.latest_aggregates (symbol text, window_seconds int, "
    "window_start timestamp, arithmetic_mean double, tick_count bigint, "
    "PRIMARY KEY ((symbol), window_seconds))",
)


def test_provision_rebuilds_windows_an_earlier_release_keyed_without_the_source(
    spark_settings: Settings,
) -> None:
    ks = spark_settings.cassandra_keyspace
    cluster, session = cassandra.connect(spark_settings)
    try:
        for table, create in zip(("aggregates_by_symbol", "latest_aggregates"), UNSOURCED,
                                 strict=True):  # fmt: skip
            session.execute(f"DROP TABLE {ks}.{table}")
            session.execute(create.format(ks=ks))
        session.execute(f"INSERT INTO {ks}.latest_aggregates (symbol, window_seconds, "
                        "arithmetic_mean, tick_count) VALUES ('BTC', 300, 1.0, 5)")  # fmt: skip
    finally:
        cluster.shutdown()

    result = run_cli(spark_settings, "provision", "cassandra")

    assert result.returncode == 0, result.stderr
    assert "aggregates_by_symbol and latest_aggregates rebuilt" in result.stdout
    assert "crypto-platform repair" in result.stdout  # how to recompute the history
    target = CassandraTarget.from_settings(spark_settings)
    write_rows(target, windows={"symbol": ["BTC"], "source": ["binance"], "day": ["2026-01-05"],
                                "window_start_ms": [T0_MS], "window_end_ms": [T0_MS + 300_000],
                                "arithmetic_mean": [2.0], "geometric_mean": [2.0],
                                "harmonic_mean": [2.0], "tick_count": [1], "min_price": [2.0],
                                "max_price": [2.0], "first_price": [2.0], "last_price": [2.0],
                                "last_event_ms": [T0_MS]})  # fmt: skip
    row = _one_row(spark_settings, "SELECT * FROM {keyspace}.latest_aggregates")
    assert (row.source, row.tick_count) == ("binance", 1)
    again = run_cli(spark_settings, "provision", "cassandra")
    assert "rebuilt" not in again.stdout


def test_two_sources_at_the_same_millisecond_leave_latest_prices_one_tick_whole(
    spark_settings: Settings,
) -> None:
    def tick(source: str, price: float, quote: str) -> dict[str, list[object]]:
        row = {
            "symbol": "ETH", "day": "2026-01-05", "event_time_ms": T0_MS, "source": source,
            "price": price, "quote": quote, "ingest_time_ms": T0_MS + 5, "name": None,
            "market_cap": None, "volume_24h": None, "change_24h_pct": None,
            "number_of_markets": None, "total_supply": None, "uuid": None,
        }  # fmt: skip
        return {column: [value] for column, value in row.items()}

    # Each beats the other on a cell: Binance's price and quote, Coinranking's source name.
    binance, coinranking = tick("binance", 3_001.0, "USDT"), tick("coinranking", 2_999.0, "USD")
    target = CassandraTarget.from_settings(spark_settings)
    for first, second in ((binance, coinranking), (coinranking, binance)):
        write_rows(target, ticks=first)
        write_rows(target, ticks=second)

        row = _one_row(
            spark_settings,
            "SELECT source, price, quote FROM {keyspace}.latest_prices WHERE symbol = 'ETH'",
        )
        assert (row.source, row.price, row.quote) == ("coinranking", 2_999.0, "USD")


def test_the_driver_holds_its_whole_heap_from_the_start(spark: SparkSession) -> None:
    # So a long-running job's memory stays what it was at start: G1 neither grows the heap
    # nor gives part of it back, and the soak's RSS figures show only real growth.
    runtime = spark._jvm.java.lang.Runtime.getRuntime()  # type: ignore[union-attr]
    assert runtime.totalMemory() == runtime.maxMemory()
