"""The producer: refused ticks are an error, counted and raised; each coin keeps its partition.

A broker restart mid-stream loses no tick the producer was given (it resends after the
broker's reset), and its ledger lists every tick the broker acknowledged.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from kafka.partitioner import murmur2

from crypto_platform.chaos.compare import read_ledgers
from crypto_platform.settings import Settings
from crypto_platform.sources.simulated import SimulatedSource
from crypto_platform.stack import LocalStack
from crypto_platform.streaming.producer import TickProducer, run_producer
from crypto_platform.streaming.progress import Progress
from crypto_platform.ticks import Tick, now_ms
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


def test_a_broker_restart_mid_stream_loses_no_tick_the_producer_was_given(
    stack: LocalStack, settings: Settings, tmp_path: Path
) -> None:
    start = now_ms()
    given = [
        Tick.build(source="simulated", symbol=f"C{n % 6}", price=100.0 + n,
                   event_time_ms=start + n, ingest_time_ms=start + n)
        for n in range(30_000)
    ]  # fmt: skip
    kafka = next(server for server in stack.servers if server.name == "kafka")

    def restart_the_broker() -> None:
        time.sleep(1.5)
        kafka.process.stop()  # SIGTERM: the local broker may come back without its tail
        stack.up()

    restarter = threading.Thread(target=restart_the_broker)
    producer = TickProducer(settings, ledger=tmp_path / "acked.ledger")
    restarter.start()
    try:
        for n, tick in enumerate(given):
            producer.send(tick)
            if n % 500 == 499:
                time.sleep(0.05)
    finally:
        restarter.join()
        producer.close(timeout=180)

    in_topic = [Tick.from_json(r.value) for r in read_topic(settings, settings.kafka_topic)]
    keys = {(t.source, t.symbol, t.event_time_ms) for t in given}
    # Every tick is there, after a reset resent (the broker answered out of order after
    # losing its tail) or not (it kept everything); duplicates are allowed in the topic.
    assert {(t.source, t.symbol, t.event_time_ms) for t in in_topic} == keys, producer.stats
    assert producer.stats.failed == 0
    assert len(in_topic) - len(given) <= producer.stats.resent
    assert read_ledgers([tmp_path / "acked.ledger"]).keys() == keys  # every one acknowledged
    for symbol in {t.symbol for t in given}:
        # Each key's last copies are in the order the ticks were given.
        last = {t.event_time_ms: n for n, t in enumerate(in_topic) if t.symbol == symbol}
        assert list(last) != [] and sorted(last, key=last.__getitem__) == sorted(last), symbol
