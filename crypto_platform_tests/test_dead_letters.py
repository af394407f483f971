"""Dead letters are acknowledged before the sink commits, even those too large to copy.

And one message never stops the sink: what MongoDB refuses for itself is dead-lettered.
"""

from __future__ import annotations

import threading

from kafka import KafkaProducer
from pymongo import MongoClient

from crypto_platform.settings import Settings
from crypto_platform.streaming.dead_letters import REASON, TRUNCATED, TRUNCATED_BYTES
from crypto_platform.streaming.sink import MongoSink, run_sink
from crypto_platform.ticks import Tick
from crypto_platform_tests.conftest import run_cli
from crypto_platform_tests.streaming_helpers import (
    committed_offsets,
    create_topic_with_max_message_bytes,
    read_topic,
    sink_until_idle,
    stored_count,
    stored_ids,
    wait_for,
)


def test_a_dead_letter_too_large_for_the_dlq_is_stored_truncated_with_the_reason(
    settings: Settings,
) -> None:
    small_dlq = settings.model_copy(update={"kafka_dlq_topic": f"{settings.kafka_dlq_topic}.small"})
    create_topic_with_max_message_bytes(settings, small_dlq.kafka_dlq_topic, 4000)
    poison = b"{not json " + b"x" * 10_000
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks="all")
    producer.send(settings.kafka_topic, key=b"BTC", value=poison, partition=0)
    producer.flush()
    producer.close()

    stats = sink_until_idle(small_dlq)

    assert stats.dead_lettered == 1
    letters = read_topic(settings, small_dlq.kafka_dlq_topic)
    assert len(letters) == 1
    headers = dict(letters[0].headers)
    assert letters[0].value == poison[:TRUNCATED_BYTES]
    assert headers[TRUNCATED] == str(len(poison)).encode()
    reason = headers[REASON].decode()
    assert "JSON" in reason and f"truncated to its first {TRUNCATED_BYTES}" in reason


def test_a_document_mongodb_refuses_is_dead_lettered_and_the_rest_of_its_poll_stored(
    settings: Settings,
) -> None:
    # An operator's schema rule on the collection: names of at most 12 characters.
    with MongoClient(settings.mongo_uri) as client:
        client[settings.mongo_database].command(
            "collMod",
            settings.mongo_collection,
            validator={"$jsonSchema": {"properties": {"name": {"maxLength": 12}}}},
        )
    ticks = [
        Tick.build(
            source="simulated",
            symbol="BTC",
            price=65_000.0 + i,
            event_time_ms=1_763_700_000_000 + i,
            ingest_time_ms=1_763_700_000_100 + i,
            name="Bitcoin" if i != 1 else "Bitcoin, but far too long a name",
        )
        for i in range(3)
    ]
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks="all")
    for tick in ticks:  # one partition, one poll: the refused one sits between two good ones
        producer.send(settings.kafka_topic, key=b"BTC", value=tick.to_json(), partition=0)
    producer.flush()
    producer.close()

    stats = sink_until_idle(settings)

    assert sorted(stored_ids(settings)) == [ticks[0].identity, ticks[2].identity]
    assert stats.inserted == 2 and stats.dead_lettered == 1
    (letter,) = read_topic(settings, settings.kafka_dlq_topic)
    assert letter.value == ticks[1].to_json()
    reason = dict(letter.headers)[REASON].decode()
    assert "MongoDB refused the document: Document failed validation (code 121)" in reason
    assert committed_offsets(settings)[0] == 3  # and the sink went past it


def test_a_write_concern_not_met_is_retried_and_commits_nothing(settings: Settings) -> None:
    # Three acknowledging members on a one-node replica set: stored, but never durable.
    unmet = settings.model_copy(update={"mongo_write_concern": "3"})
    produced = run_cli(settings, "produce", "--source", "simulated", "--count", "20")
    assert produced.returncode == 0, produced.stderr
    sink = MongoSink(unmet, retry_initial=0.1, retry_max=0.2)
    stop = threading.Event()
    worker = threading.Thread(target=run_sink, args=(sink, stop))
    worker.start()
    try:
        wait_for(lambda: sink.stats.write_retries >= 3, 30, "write retries")
        assert set(committed_offsets(settings).values()) == {None}
    finally:
        stop.set()
        worker.join(30)
        sink.close()
    assert not worker.is_alive()
    assert set(committed_offsets(settings).values()) == {None}  # nothing committed, nothing lost

    stats = sink_until_idle(settings)
    assert stats.consumed == 20 and stored_count(settings) == 20
