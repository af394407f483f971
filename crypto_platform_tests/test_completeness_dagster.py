"""Completeness in Dagster: an hour with a gap fails; the sensor has the gap repaired.

The hourly asset fails while its hour has a gap; the sensor launches the gap's backfill and
repair, after which the hour is whole in MongoDB, the ledger and Cassandra.
"""

from __future__ import annotations

import threading

import dagster as dg

from crypto_platform.completeness.ledger import find_gaps
from crypto_platform.defs.completeness.assets import (
    HOUR_COMPLETE,
    REPAIRED_HOURS,
    hourly_completeness,
    repaired_hours,
)
from crypto_platform.defs.completeness.jobs import gap_repair, hour_key
from crypto_platform.defs.completeness.sensors import gap_sensor
from crypto_platform.settings import Settings
from crypto_platform.storage import cassandra, mongo
from crypto_platform.streaming.sink import MongoSink, run_sink
from crypto_platform.ticks import now_ms
from crypto_platform_tests.test_gaps import store, ticks
from crypto_platform_tests.test_reports import resources

HOUR_MS = 3_600_000
MINUTE_MS = 60_000


def last_closed_hour() -> int:
    now = now_ms()
    return now - now % HOUR_MS - HOUR_MS


def store_the_last_hour_with_a_hole(settings: Settings) -> tuple[int, tuple[int, int]]:
    """BTC ticks from before the last closed hour until now, but for 3 minutes in it."""
    hour = last_closed_hour()
    hole = (hour + 20 * MINUTE_MS, hour + 23 * MINUTE_MS)
    store(settings, ticks("BTC", hour - 10 * MINUTE_MS, hole[0]))
    store(settings, ticks("BTC", hole[1], now_ms() + 5 * MINUTE_MS))
    return hour, hole


def stored_backfilled(settings: Settings, start_ms: int, end_ms: int) -> int:
    client = mongo.connect(settings)
    try:
        return mongo.prices_collection(client, settings).count_documents(
            {"backfilled": True, "event_time_ms": {"$gte": start_ms, "$lt": end_ms}}
        )
    finally:
        client.close()


def cassandra_ticks(settings: Settings, symbol: str, start_ms: int, end_ms: int) -> int:
    cluster, session = cassandra.connect(settings)
    try:
        days = {hour_key(start_ms)[:10], hour_key(end_ms - 1)[:10]}
        return sum(
            session.execute(
                f"SELECT count(*) FROM {settings.cassandra_keyspace}.prices_by_symbol "
                "WHERE symbol = %s AND day = %s AND event_time >= %s AND event_time < %s",
                [symbol, day, start_ms, end_ms],
            ).one()[0]
            for day in days
        )
    finally:
        cluster.shutdown()


def test_an_hour_with_a_gap_fails_until_it_is_filled_and_its_repair_writes_cassandra(
    settings: Settings,
) -> None:
    hour, hole = store_the_last_hour_with_a_hole(settings)
    partition = hour_key(hour)

    with dg.instance_for_test() as instance:
        failed = dg.materialize(
            [hourly_completeness], partition_key=partition, resources=resources(settings),
            instance=instance, raise_on_error=False,
        )  # fmt: skip
        assert not failed.success
        store(settings, ticks("BTC", *hole))  # filled
        whole = dg.materialize(
            [hourly_completeness], partition_key=partition, resources=resources(settings),
            instance=instance,
        )  # fmt: skip
        repaired = dg.materialize(
            [repaired_hours], partition_key=partition, resources=resources(settings),
            instance=instance,
        )  # fmt: skip

    (check,) = whole.get_asset_check_evaluations()
    assert check.check_name == HOUR_COMPLETE and check.passed
    metadata = whole.asset_materializations_for_node("completeness__hourly_completeness")[0]
    assert metadata.metadata["unrepaired_gaps"].value == 0
    assert metadata.metadata["ticks_stored"].value == 1800  # an hour at one tick per 2 s
    assert repaired.success
    assert cassandra_ticks(settings, "BTC", hour, hour + HOUR_MS) == 1800


def evaluate(instance: dg.DagsterInstance, settings: Settings) -> object:
    with dg.build_sensor_context(instance=instance, resources=resources(settings)) as context:
        return gap_sensor(context)


def test_the_sensor_launches_a_gaps_backfill_and_repair_and_the_hour_is_whole(
    settings: Settings,
) -> None:
    start = now_ms() - 40 * MINUTE_MS
    hole = (start + 20 * MINUTE_MS, start + 23 * MINUTE_MS)
    store(settings, ticks("ETH", start, hole[0]))
    store(settings, ticks("ETH", hole[1], now_ms() + 5 * MINUTE_MS))
    sink = MongoSink(settings)
    stop = threading.Event()
    worker = threading.Thread(target=run_sink, args=(sink, stop))
    worker.start()
    try:
        with dg.instance_for_test() as instance:
            result = evaluate(instance, settings)
            assert isinstance(result, dg.SensorResult)
            (request,) = result.run_requests or []
            assert request.run_key is not None and request.run_key.startswith("simulated:ETH:")

            run = gap_repair.execute_in_process(
                run_config=request.run_config, resources=resources(settings),
                instance=instance, tags=request.tags,
            )  # fmt: skip

            assert run.success
            hours = {
                event.partition
                for event in run.asset_materializations_for_node("repair_gap")
                if event.asset_key == REPAIRED_HOURS
            }
            assert hours == {hour_key(t - t % HOUR_MS) for t in hole}
            assert isinstance(evaluate(instance, settings), dg.SkipReason)  # nothing left
    finally:
        stop.set()
        worker.join(30)
        sink.close()

    assert stored_backfilled(settings, *hole) == 90  # three minutes at one tick per 2 s
    (gap,) = [g for g in find_gaps(settings, start, now_ms()) if g.symbol == "ETH"]
    assert gap.status == "repaired"
    assert cassandra_ticks(settings, "ETH", *hole) == 90
