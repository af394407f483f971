"""The producer: refused ticks are an error, counted and raised; each coin keeps its partition."""

from __future__ import annotations

import threading

from kafka.partitioner import murmur2

from crypto_platform.settings import Settings
from crypto_platform.sources.simulated import SimulatedSource
from crypto_platform.streaming.producer import TickProducer, run_producer
from crypto_platform.streaming.progress import Progress
from crypto_platform.ticks import Tick
from crypto_platform_tests.conftest import run_cli
from crypto_platform_tests.streaming_helpers import create_topic_with_max_message_bytes, read_topic

QUIET = Progress("test", every=1e9)


def test_ticks_the_broker_refuses_fail_the_producer_with_a_count(settings: Settings) -> None:
    refusing = settings.model_copy(update={"kafka_topic": f"{settings.kafka_topic}.tiny"})
    create_topic_with_max_message_bytes(settings, refusing.kafka_topic, 60)

    result = run_cli(refusing, "produce", "--source", "simulated", "--count", "20", timeout=180)

    assert result.returncode == 1, result.stdout
    assert "Traceback" not in result.stderr
    assert "ticks were not delivered to" in result.stderr
    assert "produced 20 ticks" not in result.stdout


def test_each_coin_keeps_one_partition_the_one_any_kafka_client_picks(settings: Settings) -> None:
    symbols = [f"C{n}" for n in range(12)]
    producer = TickProducer(settings)
    try:
        run_producer(
            SimulatedSource(symbols), producer, threading.Event(), count=1_200, progress=QUIET
        )
    finally:
        producer.close()

    records = read_topic(settings, settings.kafka_topic)
    assert len(records) == 1_200
    for record in records:
        # The Java client's rule (murmur2 of the key), so every client agrees on a coin's place.
        expected = (murmur2(record.key) & 0x7FFFFFFF) % settings.kafka_partitions
        assert record.partition == expected, record.key
    assert len({record.partition for record in records}) == settings.kafka_partitions
    for symbol in symbols:
        times = [Tick.from_json(r.value).event_time_ms for r in records if r.key == symbol.encode()]
        assert times == sorted(times) and len(times) == 100
